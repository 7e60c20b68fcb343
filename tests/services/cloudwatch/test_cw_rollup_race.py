"""A raw row committed while its day is being rolled up is neither lost with the dropped partition
nor counted twice: the roll-up sees the day's count change, rolls back and tries again."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, text

from cwharness import WRITER, create_remote_db

from eucadb.services.cloudwatch import partitions, rollups, tiers

INSERT = text("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit, samples) "
              "VALUES (7, :ts, 1, :v, :v, :v, 'None', ARRAY[:v])")


def test_row_written_during_the_roll_up_counts_once(pg_server, monkeypatch):
    db = create_remote_db(pg_server)
    admin = create_engine(pg_server.url(db))
    writer = create_engine(f"postgresql+psycopg2://{WRITER}@{pg_server.host}:{pg_server.port}/{db}")
    today = datetime.now(timezone.utc).date()
    day = today - timedelta(days=3)
    with admin.begin() as conn:
        partitions.ensure(conn, tiers.RAW_TABLE, [day])
    with writer.begin() as conn:
        for m in range(10):
            conn.execute(INSERT, {"ts": partitions.midnight(day) + timedelta(minutes=m), "v": float(m)})
    merge, calls = rollups._merge, []

    def merge_then_write(conn, today):   # another writer commits into the day being rolled up
        merge(conn, today)
        if not calls:
            with writer.begin() as other:
                other.execute(INSERT, {"ts": partitions.midnight(day) + timedelta(hours=5), "v": 100.0})
        calls.append(1)
    monkeypatch.setattr(rollups, "_merge", merge_then_write)
    done = rollups.roll_up(admin, today)
    assert done.raw_rows == 11 and done.busy == [] and len(calls) >= 3   # day tried twice, then the late pass
    with admin.connect() as conn:
        for t in tiers.ROLLUPS:
            assert conn.execute(text(f"SELECT sum(sample_count), sum(sum) FROM {t.table}")).one() == (11, 145)
        assert conn.execute(text("SELECT count(*) FROM metric_datapoints")).scalar() == 0
    admin.dispose()
    writer.dispose()
