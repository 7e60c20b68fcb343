"""cloudwatch local context: the alarm-action outbox (one row per action of one state transition)

Written in the same transaction as the alarm's state change and drained by the leader, so an action
is neither lost nor repeated when the leader dies between the transition and the call. A new table
(no column added to cw_alarms) so it merges with the tenancy work on the alarm tables.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cw_action_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(12), nullable=False),
        sa.Column("alarm_name", sa.String(255), nullable=False),
        sa.Column("transition_id", sa.String(36), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.UniqueConstraint("transition_id", "action", name="cw_action_outbox_once"))
    op.create_index("cw_action_outbox_pending", "cw_action_outbox", ["done_at", "id"])


def downgrade() -> None:
    op.drop_index("cw_action_outbox_pending", "cw_action_outbox")
    op.drop_table("cw_action_outbox")
