"""an id per alarm-history event, so delivery from the local outbox is idempotent

The writer role may only INSERT: a retried delivery uses ON CONFLICT DO NOTHING on this index (a
unique index on a partitioned table must include the partition key, hence (event_id, ts)). Rows
written before this revision keep a NULL id, which never conflicts.

Revision ID: cw0003
Revises: cw0002
"""
from alembic import op

revision = "cw0003"
down_revision = "cw0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE alarm_history ADD COLUMN event_id uuid")
    op.execute("CREATE UNIQUE INDEX alarm_history_event ON alarm_history (event_id, ts)")


def downgrade() -> None:
    op.execute("DROP INDEX alarm_history_event")
    op.execute("ALTER TABLE alarm_history DROP COLUMN event_id")
