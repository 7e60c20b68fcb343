"""append-only usage events, partitioned by time

Revision ID: rp0001
Revises:
"""
from alembic import op

revision = "rp0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE usage_events (
            ts            timestamptz NOT NULL,
            account       text        NOT NULL,
            resource_type text        NOT NULL,
            resource_id   text        NOT NULL,
            event         text        NOT NULL,
            attributes    jsonb       NOT NULL DEFAULT '{}'::jsonb
        ) PARTITION BY RANGE (ts)""")
    op.execute("CREATE INDEX usage_events_account_ts ON usage_events (account, ts)")
    op.execute("CREATE INDEX usage_events_resource_ts ON usage_events (resource_id, ts)")
    op.execute("CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT")
    op.execute("REVOKE ALL ON eucadb_schema_version FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE usage_events")
