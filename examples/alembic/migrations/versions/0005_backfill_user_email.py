"""backfill users.email, then require it

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Data first, in the same transaction, so the NOT NULL below never sees a gap.
    op.execute("UPDATE users SET email = name || '@example.invalid' WHERE email IS NULL")
    op.alter_column("users", "email", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
    op.alter_column("users", "email", existing_type=sa.Text, nullable=True)
