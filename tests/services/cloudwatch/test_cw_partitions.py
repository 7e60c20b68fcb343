"""Daily partitions created ahead by the admin role, rows routed into them by the writer's COPY, and
retention as DROP of whole days."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from cwharness import create_remote_db

from eucadb.services.cloudwatch import datapoints, partitions


def test_ensure_and_drop(pg_server):
    db = create_remote_db(pg_server)
    admin = create_engine(pg_server.url(db))
    writer = create_engine(f"postgresql+psycopg2://cloudwatch_writer@{pg_server.host}:{pg_server.port}/{db}")
    today = datetime.now(timezone.utc).date()

    class Pools:
        def engine(self, context):
            return writer
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    datapoints.copy_rows(Pools(), [datapoints.Row(1, yesterday, 1, 1, 1, 1, 60, "None")])   # lands in default
    with admin.begin() as conn:
        created = partitions.ensure_daily(conn, today - timedelta(days=1), ahead=2)
    assert partitions.partition_name("metric_datapoints", today) in created
    assert partitions.partition_name("metric_datapoints", today - timedelta(days=1)) not in created  # rows in default
    now = datetime.now(timezone.utc)
    datapoints.copy_rows(Pools(), [datapoints.Row(1, now, 1, 2, 2, 2, 60, "None")])
    with admin.begin() as conn:
        part = partitions.partition_name("metric_datapoints", today)
        assert conn.execute(text(f"SELECT count(*) FROM {part}")).scalar() == 1
        assert partitions.ensure_daily(conn, today - timedelta(days=1), ahead=2) == []   # idempotent
        dropped = partitions.drop_before(conn, today + timedelta(days=1))
        assert part in dropped
        assert conn.execute(text("SELECT count(*) FROM metric_datapoints")).scalar() == 0
    with writer.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("CREATE TABLE metric_datapoints_x PARTITION OF metric_datapoints "
                          "FOR VALUES FROM ('2030-01-01') TO ('2030-01-02')"))
    admin.dispose()
    writer.dispose()
