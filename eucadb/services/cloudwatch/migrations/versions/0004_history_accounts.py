"""alarm history belongs to an account

Each event carries the account of its alarm (same name in two accounts = two alarms, two histories).
Rows written before this revision keep a NULL account: they were the one tenant's, which the service
reads as the installation's default account (docs/cloudwatch.md; the remote database does not know
that account, and the writer role may not UPDATE). The datapoints table is not touched: series ids
are per account in the local catalogue, so the account costs nothing per datapoint.

Revision ID: cw0004
Revises: cw0003
"""
from alembic import op

revision = "cw0004"
down_revision = "cw0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE alarm_history ADD COLUMN account text")
    op.execute("DROP INDEX alarm_history_name_ts")
    op.execute("CREATE INDEX alarm_history_account_name_ts ON alarm_history (account, alarm_name, ts)")
    op.execute("CREATE INDEX alarm_history_account_ts ON alarm_history (account, ts)")


def downgrade() -> None:
    op.execute("DROP INDEX alarm_history_account_ts")
    op.execute("DROP INDEX alarm_history_account_name_ts")
    op.execute("CREATE INDEX alarm_history_name_ts ON alarm_history (alarm_name, ts)")
    op.execute("ALTER TABLE alarm_history DROP COLUMN account")
