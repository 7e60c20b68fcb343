"""service states

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_states",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admin_disabled_by", sa.String(100), nullable=True),
        sa.Column("admin_disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_table("service_states")
