"""index orders.created_at concurrently

CREATE INDEX CONCURRENTLY cannot run in a transaction: autocommit_block commits what came
before and runs it on its own.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "orders_created_at_idx",
            "orders",
            ["created_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("orders_created_at_idx", table_name="orders", postgresql_concurrently=True)
