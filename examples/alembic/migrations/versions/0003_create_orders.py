"""create orders

Written on another branch than 0002, from the same parent: 0004 merges the two.

Revision ID: 0003
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_index("orders_user_id_idx", "orders", ["user_id"])


def downgrade() -> None:
    op.drop_index("orders_user_id_idx", table_name="orders")
    op.drop_table("orders")
