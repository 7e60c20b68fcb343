"""scheduled backups: the last fire time taken and the last result

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_schedule",
        sa.Column("deployment", sa.String(32), primary_key=True),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_table("backup_schedule")
