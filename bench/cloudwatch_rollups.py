#!/usr/bin/env python3
"""Rollup tiers on one PostgreSQL: storage per series-year and GetMetricStatistics latency per tier.

Fills `--days` of minute data for `--series` series straight into the raw table (values random in
0..100, one sample each, as PutMetricData with Value stores them), times the raw-only read the old
layout did, runs the real maintenance (partitions.run: roll-up of every closed day, drops), then:

(a) bytes per row of each table (heap + indexes + TOAST, measured) and the steady-state footprint of
    one series at one datapoint a minute: what the tiers retain (2 raw days, 15 d of 1 min, 63 d of
    5 min, 455 d of 1 h) against keeping every raw datapoint 455 days (the old retention);
(b) the SQL of series_statistics for random series on each tier, median and p95 over `--queries`.

    .venv/bin/python bench/cloudwatch_rollups.py [--series 700] [--days 20] [--queries 30]
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

from eucadb.services.cloudwatch import datapoints, partitions, rollups, tiers  # noqa: E402

FILL = """INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, storage_resolution,
                                         unit, samples)
          SELECT s, :base + make_interval(mins => m), 1, v, v, v, 60, 'None', ARRAY[v]
          FROM generate_series(:m0, :m1 - 1) m, generate_series(0, :series - 1) s,
               LATERAL (SELECT round((random() * 100)::numeric, 2)::float8 + 0 * m AS v) r"""
STEADY_ROWS = {"metric_datapoints": 2 * 1440, "metric_rollup_1m": 15 * 1440, "metric_rollup_5m": 63 * 288,
               "metric_rollup_1h": 455 * 24}
OLD_ROWS = 455 * 1440


def bytes_per_row(conn, table: str) -> tuple[int, float]:
    parts = [table, f"{table}_default", *partitions.existing(conn, table).values()]
    size = sum(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": p}).scalar() for p in parts)
    rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
    return rows, size / rows if rows else 0.0


def timed(conn, sql, make_args, n: int) -> tuple[float, float]:
    ms = []
    for _ in range(n):
        args = make_args()
        t = time.perf_counter()
        conn.execute(sql, args).all()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return statistics.median(ms), ms[max(0, int(len(ms) * .95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=700)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    pg = start_pg({"max_wal_size": "4GB"})
    try:
        engine = create_engine(pg.url(create_remote_db(pg)))
        run(engine, args)
        engine.dispose()
    finally:
        pg.stop()


def run(engine, args) -> None:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    today = now.date()
    base = partitions.midnight(today - timedelta(days=args.days))
    minutes = int((now - base).total_seconds() // 60)
    t = time.perf_counter()
    with engine.begin() as conn:
        partitions.ensure(conn, tiers.RAW_TABLE, [today - timedelta(days=d) for d in range(args.days + 1)])
    for m0 in range(0, minutes, 1440):
        with engine.begin() as conn:
            conn.execute(text(FILL), {"base": base, "m0": m0, "m1": min(minutes, m0 + 1440), "series": args.series})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        raw_rows, raw_bpr = bytes_per_row(conn, tiers.RAW_TABLE)
    print(f"filled {raw_rows:,} raw rows ({args.series} series x {minutes:,} minutes) in {time.perf_counter() - t:.0f} s")
    rnd = random.Random(7)

    def window(age: timedelta, length: timedelta, period: int):
        def make():
            start = now - age
            return {"sid": rnd.randrange(args.series), "start": start, "end": start + length, "period": period,
                    "unit": None}
        return make
    cases = [  # label, tier, start age, length, period
        ("raw: last 3 h at 10 s", None, timedelta(hours=3), timedelta(hours=3), 10),
        ("1-minute: last 1 h at 60 s", tiers.BY_SECONDS[60], timedelta(hours=1), timedelta(hours=1), 60),
        ("1-minute: 1 day, 5 d ago, at 60 s", tiers.BY_SECONDS[60], timedelta(days=5), timedelta(days=1), 60),
        ("5-minute: last 30 d at 1800 s", tiers.BY_SECONDS[300], timedelta(days=30), timedelta(days=30), 1800),
        ("1-hour: last 455 d at 86400 s", tiers.BY_SECONDS[3600], timedelta(days=455), timedelta(days=455), 86400),
    ]
    with engine.connect() as conn:
        old = {label: timed(conn, datapoints.AGGREGATE_SQL, window(age, length, period), args.queries)
               for label, _, age, length, period in cases}
    t = time.perf_counter()
    created, dropped = partitions.run(engine, today)
    rolled = time.perf_counter() - t
    print(f"maintenance: rolled {args.days - 1} raw days into 3 tiers in {rolled:.0f} s "
          f"({raw_rows / rolled:,.0f} raw rows/s); {len(created)} partitions created, {len(dropped)} dropped")
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        sizes = {table: bytes_per_row(conn, table) for table in STEADY_ROWS}
    print("(a) storage, measured bytes per row (heap + indexes + TOAST)")
    total = 0.0
    for table, (rows, bpr) in sizes.items():
        steady = STEADY_ROWS[table] * bpr
        total += steady
        print(f"    {table:<20} {rows:>12,} rows  {bpr:7.1f} B/row  steady state {STEADY_ROWS[table]:>7,} rows/series "
              f"= {steady / 1e6:6.2f} MB")
    print(f"    one series, everything retained (455 d): {total / 1e6:.2f} MB; raw for 455 d (old): "
          f"{OLD_ROWS * raw_bpr / 1e6:.2f} MB ({OLD_ROWS * raw_bpr / total:.1f}x)")
    print(f"    per series-year of 1 h data: {8760 * sizes['metric_rollup_1h'][1] / 1e6:.2f} MB; "
          f"of raw minute data: {525_600 * raw_bpr / 1e6:.2f} MB")
    print(f"(b) series_statistics SQL, one series of {args.series}, {args.queries} queries: before roll-up "
          "(raw only, old layout) -> tier")
    with engine.connect() as conn:
        for label, tier, age, length, period in cases:
            sql = datapoints.AGGREGATE_SQL if tier is None else tiers.AGGREGATE[tier.seconds]
            med, p95 = timed(conn, sql, window(age, length, period), args.queries)
            print(f"    {label:<36} raw {old[label][0]:8.2f} ms (p95 {old[label][1]:8.2f})   "
                  f"tier {med:8.2f} ms (p95 {p95:8.2f})")
        pct = tiers.BY_SECONDS[300]
        med, p95 = timed(conn, tiers.SAMPLES[pct.seconds], window(timedelta(days=30), timedelta(days=30), 1800),
                         args.queries)
        print(f"    {'5-minute sketches: last 30 d':<36} {'':>28}tier {med:8.2f} ms (p95 {p95:8.2f})")
    print(f"raw days kept: {sorted(partitions.existing(engine.connect(), tiers.RAW_TABLE))[0]} on "
          f"(boundary {rollups.boundary(today)})")


if __name__ == "__main__":
    main()
