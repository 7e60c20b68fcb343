"""cloudwatch local context: dashboards, tags of alarms and dashboards, the alarm-history outbox

Every new table carries an `account` column (today the one account of the service) so that
per-account tenancy needs no further key change.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cw_dashboards",
        sa.Column("account", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "cw_tags",
        sa.Column("account", sa.String(12), primary_key=True),
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("resource_name", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False))
    op.create_table(
        "cw_history_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("alarm_name", sa.String(255), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("cw_history_outbox")
    op.drop_table("cw_tags")
    op.drop_table("cw_dashboards")
