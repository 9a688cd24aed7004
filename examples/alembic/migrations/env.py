"""Alembic's environment for this example: the database from DATABASE_URL.

Offline mode (`alembic upgrade A:B --sql`, which `shipgate check` runs) prints the SQL and
never connects: the URL only chooses the dialect.

Under shipgate (runner = "alembic") the migration lock is already held: shipgate sets
SHIPGATE_LOCK_HELD=1. Run by hand (`alembic upgrade heads`), this file takes the same
PostgreSQL advisory lock shipgate takes, so a hand-run upgrade and a deploy never overlap.
"""
import hashlib
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name)

# shipgate's `table_prefix` (default "shipgate") and `schema` (default: the connection's).
SHIPGATE_TABLE_PREFIX = "shipgate"


def database_url() -> str:
    url = os.environ["DATABASE_URL"]
    # Platforms hand out postgres://, which SQLAlchemy 1.4+ no longer accepts; and SQLAlchemy
    # 2.1's default PostgreSQL driver is psycopg 3, while this project installs psycopg2.
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def shipgate_lock_key(connection) -> tuple[int, int]:
    """The key of shipgate's advisory lock: SHA-256 of shipgate:<database>:<schema>:<table>."""
    database, schema = connection.exec_driver_sql(
        "SELECT current_database(), current_schema()"
    ).one()
    ident = f"shipgate:{database}:{schema}:{SHIPGATE_TABLE_PREFIX}_migrations"
    digest = hashlib.sha256(ident.encode()).digest()
    k1 = int.from_bytes(digest[0:4], "big") & 0x7FFFFFFF
    k2 = int.from_bytes(digest[4:8], "big") & 0x7FFFFFFF
    return k1, k2


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        lock = None
        if connection.dialect.name == "postgresql" and not os.environ.get("SHIPGATE_LOCK_HELD"):
            lock = shipgate_lock_key(connection)
            # A session lock: it outlives the transactions below, and goes with the session.
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({lock[0]}, {lock[1]})")
            connection.commit()
        try:
            context.configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if lock is not None:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({lock[0]}, {lock[1]})")
                connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
