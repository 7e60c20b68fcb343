#!/usr/bin/env python3
"""Storage layout figures for the CloudWatch datapoints, side by side on one PostgreSQL:

(b) GetMetricStatistics latency for one series among many, over millions of rows: our layout
    (time-partitioned, (series_id, ts) index) vs the old one (16 hash-sharded tables, one index on ts);
(c) purging one day: DROP of its partition vs DELETE of its rows — WAL bytes and seconds.

    .venv/bin/python bench/cloudwatch_layout.py [--series 10000] [--minutes 300] [--queries 50]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "services" / "cloudwatch"))
from cwharness import create_remote_db  # noqa: E402
from pg import start_pg  # noqa: E402

from eucadb.services.cloudwatch import partitions  # noqa: E402
from eucadb.services.cloudwatch.datapoints import AGGREGATE_SQL  # noqa: E402

SHARDS = 16
FILL = """INSERT INTO {table} (series_id, ts, sample_count, sum, minimum, maximum, storage_resolution, unit)
          SELECT s, :base + make_interval(mins => m), 1, v, v, v, 60, 'None'
          FROM generate_series(0, :minutes - 1) m, generate_series(0, :series - 1) s,
               LATERAL (SELECT random() * 100 AS v) r {where}"""
OLD_SQL = AGGREGATE_SQL.text.replace("metric_datapoints", "{table}")


def wal_lsn(conn) -> int:
    return int(conn.execute(text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")).scalar())


def layout_latency(engine, args) -> None:
    base = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"base": base, "minutes": args.minutes, "series": args.series}
    with engine.begin() as conn:
        partitions.ensure_daily(conn, base.date(), ahead=1, tables=("metric_datapoints",))
        conn.execute(text(FILL.format(table="metric_datapoints", where="")), params)
        for shard in range(SHARDS):
            table = f"old_metric_data_{shard:x}"
            conn.execute(text(f"CREATE TABLE {table} (LIKE metric_datapoints)"))
            conn.execute(text(f"CREATE INDEX {table}_ts ON {table} (ts)"))
            conn.execute(text(FILL.format(table=table, where=f"WHERE s % {SHARDS} = {shard}")), params)
        conn.execute(text("ANALYZE"))
    rows = args.series * args.minutes
    rnd = random.Random(2)
    timings: dict[str, list[float]] = {"partitioned, (series_id, ts) index": [], "hash-sharded, ts index": []}
    with engine.connect() as conn:
        for _ in range(args.queries):
            sid = rnd.randrange(args.series)
            start = base + timedelta(minutes=rnd.randrange(max(1, args.minutes - 60)))
            q = {"sid": sid, "start": start, "end": start + timedelta(hours=1), "period": 300, "unit": None}
            for label, sql in (("partitioned, (series_id, ts) index", AGGREGATE_SQL),
                               ("hash-sharded, ts index", text(OLD_SQL.format(table=f"old_metric_data_{sid % SHARDS:x}")))):
                t = time.perf_counter()
                conn.execute(sql, q).all()
                timings[label].append((time.perf_counter() - t) * 1000)
    print(f"(b) GetMetricStatistics, 1 h at 5 min, one series of {args.series:,} ({rows:,} rows per layout), "
          f"{args.queries} queries")
    for label, ms in timings.items():
        print(f"    {label:<36} median {statistics.median(ms):8.2f} ms   p95 {sorted(ms)[int(len(ms) * .95) - 1]:8.2f} ms")


def purge_day(engine, args) -> None:
    day1 = datetime.now(timezone.utc).date() + timedelta(days=10)
    day2 = day1 + timedelta(days=1)
    with engine.begin() as conn:
        partitions.ensure_daily(conn, day1, ahead=1, tables=("metric_datapoints",))
        for day in (day1, day2):
            conn.execute(text(FILL.format(table="metric_datapoints", where="")),
                         {"base": datetime.combine(day, datetime.min.time(), timezone.utc),
                          "minutes": args.minutes, "series": args.series})
    out = {}
    for label, sql in (("DELETE the day's rows", f"DELETE FROM {partitions.partition_name('metric_datapoints', day1)}"),
                       ("DROP the day's partition", f"DROP TABLE {partitions.partition_name('metric_datapoints', day2)}")):
        with engine.begin() as conn:
            conn.execute(text("CHECKPOINT"))
            before, t = wal_lsn(conn), time.perf_counter()
            conn.execute(text(sql))
        with engine.connect() as conn:
            out[label] = (wal_lsn(conn) - before, time.perf_counter() - t)
    print(f"(c) purge one day of {args.series * args.minutes:,} rows")
    for label, (wal, secs) in out.items():
        print(f"    {label:<36} WAL {wal / 1e6:10.2f} MB   {secs:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=300)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    pg = start_pg()
    try:
        engine = create_engine(pg.url(create_remote_db(pg)))
        layout_latency(engine, args)
        purge_day(engine, args)
        engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
