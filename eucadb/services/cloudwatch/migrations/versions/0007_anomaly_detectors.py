"""anomaly detectors: PutAnomalyDetector / DeleteAnomalyDetector as an append-only event log

The writer role may only INSERT (append-only remote database), so a detector is not a row that is
updated or deleted: every Put and Delete appends one event, and a detector exists while its newest
event is a put (anomaly.py). Detectors are few (a handful per account), so the log stays small.

Revision ID: cw0007
Revises: cw0005
"""
from alembic import op

revision = "cw0007"
down_revision = "cw0005"   # parallel branch cwperf takes cw0006; relinked when merged
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE anomaly_detector_events (
            event_id  uuid        PRIMARY KEY,
            account   text        NOT NULL,
            detector  text        NOT NULL,
            ts        timestamptz NOT NULL,
            op        text        NOT NULL CHECK (op IN ('put', 'delete')),
            body      jsonb
        )""")
    op.execute("CREATE INDEX anomaly_detector_events_latest ON anomaly_detector_events (account, detector, ts)")


def downgrade() -> None:
    op.execute("DROP TABLE anomaly_detector_events")
