"""which member of a deployment's replication set is the primary, and its generation

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replication_sets",
        sa.Column("deployment", sa.String(32), primary_key=True),
        sa.Column("primary_member", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("replication_sets")
