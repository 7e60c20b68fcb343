"""append-only CloudWatch tables: datapoints and alarm history, partitioned by time

Revision ID: cw0001
Revises:
"""
from alembic import op

revision = "cw0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Range-partitioned by time so retention is DROP of a partition, not DELETE (no bloat, little WAL).
    # The default partition catches rows until the partition maintainer has created the right one.
    op.execute("""
        CREATE TABLE metric_datapoints (
            series_id          bigint           NOT NULL,
            ts                 timestamptz      NOT NULL,
            sample_count       double precision NOT NULL,
            sum                double precision NOT NULL,
            minimum            double precision NOT NULL,
            maximum            double precision NOT NULL,
            storage_resolution smallint         NOT NULL DEFAULT 60,
            unit               text,
            samples            double precision[]
        ) PARTITION BY RANGE (ts)""")
    op.execute("CREATE INDEX metric_datapoints_series_ts ON metric_datapoints (series_id, ts)")
    op.execute("CREATE TABLE metric_datapoints_default PARTITION OF metric_datapoints DEFAULT")
    op.execute("""
        CREATE TABLE alarm_history (
            alarm_name  text        NOT NULL,
            ts          timestamptz NOT NULL,
            item_type   text        NOT NULL,
            summary     text        NOT NULL,
            data        jsonb
        ) PARTITION BY RANGE (ts)""")
    op.execute("CREATE INDEX alarm_history_name_ts ON alarm_history (alarm_name, ts)")
    op.execute("CREATE TABLE alarm_history_default PARTITION OF alarm_history DEFAULT")
    op.execute("REVOKE ALL ON eucadb_schema_version FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE alarm_history")
    op.execute("DROP TABLE metric_datapoints")
