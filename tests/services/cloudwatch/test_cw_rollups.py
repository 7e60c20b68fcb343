"""Retention as AWS stores it: 20 days of minute data generated straight into the raw table, rolled
up by the real maintenance run (admin role) into the 1-minute, 5-minute and 1-hour tiers, and read
back with real botocore clients through GetMetricStatistics / GetMetricData.

Expected values are computed here from the generating formula, not read back from the database.
Values are multiples of 0.25, so sums are exact in any order and compared with ==. AWS sources:
"Metrics retention" (CloudWatch concepts) for the tiers; percentiles within sketch.ALPHA.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from eucadb.services.cloudwatch import partitions, rollups, sketch, stats, tiers
from eucadb.services.cloudwatch.catalogue import SeriesKey

NS = "Rollup/Test"
DAYS = 20
# name -> (unit, SQL for sample_count, sum, minimum, maximum; SQL for samples, sample_counts; the same in Python)
SERIES = {
    "single": ("None", "1, v, v, v", "ARRAY[v], NULL", lambda v: (1, v, v, v, [(v, 1)])),
    "counted": ("None", "4, 7 * v, v, 2 * v", "ARRAY[v, 2 * v], ARRAY[1, 3]::float8[]",
                lambda v: (4, 7 * v, v, 2 * v, [(v, 1), (2 * v, 3)])),
    "statset": ("Seconds", "10, 10 * v, v / 2, 2 * v", "NULL, NULL", lambda v: (10, 10 * v, v / 2, 2 * v, [])),
}
FILL = """INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, storage_resolution,
                                         unit, samples, sample_counts)
          SELECT :sid, :base + make_interval(mins => m), {cols}, 60, :unit, {arrays}
          FROM generate_series(0, :n - 1) m, LATERAL (SELECT (((m * 7919) % 1000 + 1) / 4.0)::float8 AS v) x"""


def value(m: int) -> float:
    return ((m * 7919) % 1000 + 1) / 4.0


@pytest.fixture(scope="module")
def world(endpoint, pg_server):
    """The generated series (ids, base, minutes) and an admin engine on the endpoint's database."""
    cw = endpoint.service.for_account(endpoint.account)   # the test key's account owns the series
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    today = now.date()
    base = partitions.midnight(today - timedelta(days=DAYS))
    n = int((now - base).total_seconds() // 60)
    keys = {name: SeriesKey.of(NS, name, [{"Name": "Host", "Value": "a"}]) for name in SERIES}
    ids = cw.catalogue.resolve(keys.values())
    admin = create_engine(pg_server.url(cw.pools.remote.url.database))
    with admin.begin() as conn:   # raw partitions for every generated day, as maintenance would have made
        partitions.ensure(conn, tiers.RAW_TABLE, [today - timedelta(days=d) for d in range(DAYS + 1)])
    with cw.pools.remote.begin() as conn:   # the writer role: INSERT only
        for name, (unit, cols, arrays, _) in SERIES.items():
            conn.execute(text(FILL.format(cols=cols, arrays=arrays)),
                         {"sid": ids[keys[name]], "base": base, "n": n, "unit": unit})
    yield {"now": now, "today": today, "base": base, "n": n, "ids": {k: ids[v] for k, v in keys.items()},
           "admin": admin, "writer": cw.pools.remote}
    admin.dispose()


def expected(w, name: str, start: datetime, end: datetime, period: int) -> dict[float, tuple]:
    """Per period start: (SampleCount, Sum, Minimum, Maximum, samples) from the formula."""
    out: dict[float, list] = defaultdict(lambda: [0.0, 0.0, math.inf, -math.inf, []])
    for m in range(w["n"]):
        ts = w["base"] + timedelta(minutes=m)
        if not start <= ts < end:
            continue
        c, s, lo, hi, pairs = SERIES[name][3](value(m))
        b = out[ts.timestamp() // period * period]
        b[0] += c
        b[1] += s
        b[2], b[3] = min(b[2], lo), max(b[3], hi)
        b[4].extend(pairs)
    return {k: tuple(v) for k, v in out.items()}


def statistics(endpoint, name: str, start: datetime, end: datetime, period: int, **extra) -> list[dict]:
    unit = SERIES[name][0]
    got = endpoint.client().get_metric_statistics(
        Namespace=NS, MetricName=name, Dimensions=[{"Name": "Host", "Value": "a"}], StartTime=start,
        EndTime=end, Period=period, Unit=unit, **extra)
    return sorted(got["Datapoints"], key=lambda p: p["Timestamp"])


def check_basic(w, endpoint, name: str, start: datetime, end: datetime, period: int) -> None:
    points = statistics(endpoint, name, start, end, period,
                        Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"])
    want = expected(w, name, start, end, period)
    assert len(points) == len(want) > 0
    for p in points:
        c, s, lo, hi, _ = want[p["Timestamp"].timestamp()]
        assert (p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"]) == (c, s, lo, hi)
        assert p["Average"] == s / c


def snapshot(admin) -> dict:
    """Everything the tiers and raw hold, to compare runs."""
    out = {}
    with admin.connect() as conn:
        for table in [tiers.RAW_TABLE] + [t.table for t in tiers.ROLLUPS]:
            out[table] = conn.execute(text(
                f"SELECT count(*), sum(sample_count), sum(sum), md5(string_agg(concat_ws(',', series_id, ts, "
                f"unit, sample_count, sum, minimum, maximum), ';' ORDER BY series_id, ts, unit)) FROM {table}")).one()
        out["partitions"] = sorted(conn.execute(text(
            "SELECT relname FROM pg_class WHERE relname ~ '^metric_.*_p[0-9]{8}$'")).scalars())
    return out


@pytest.fixture(scope="module")
def maintained(world):
    before = snapshot(world["admin"])
    partitions.run(world["admin"], world["today"])
    return before


def test_raw_past_retention_gone_and_writer_cannot_write_tiers(world, maintained):
    raw_days = partitions.existing(world["admin"].connect(), tiers.RAW_TABLE)
    assert raw_days and min(raw_days) == rollups.boundary(world["today"])   # older raw days rolled up, dropped
    with world["admin"].connect() as conn:
        oldest = {t.table: conn.execute(text(f"SELECT min(ts) FROM {t.table}")).scalar() for t in tiers.ROLLUPS}
        late = conn.execute(text("SELECT count(*) FROM metric_datapoints WHERE ts < :b"),
                            {"b": partitions.midnight(rollups.boundary(world["today"]))}).scalar()
    assert late == 0
    assert oldest["metric_rollup_1m"] >= partitions.midnight(world["today"]) - timedelta(days=15)
    assert oldest["metric_rollup_5m"] == oldest["metric_rollup_1h"] == world["base"]   # 20 days < 63, 455
    with world["admin"].connect() as conn:   # every raw row counted once, in every tier
        for t in tiers.ROLLUPS:
            assert conn.execute(text(f"SELECT sum(sample_count) FROM {t.table} WHERE ts >= :b"),
                                {"b": partitions.midnight(world["today"]) - timedelta(days=15)}).scalar() == \
                conn.execute(text("SELECT sum(sample_count) FROM metric_rollup_1m")).scalar()
    for table in ("metric_rollup_1m", "metric_rollup_1h_default"):   # maintenance revoked the default grant
        with pytest.raises(ProgrammingError, match="permission denied"), world["writer"].begin() as conn:
            conn.execute(text(f"INSERT INTO {table} VALUES (1, now(), 'None', 1, 1, 1, 1, NULL, NULL)"))


@pytest.mark.parametrize("name", sorted(SERIES))
def test_last_hour_and_last_30_days_match_the_raw_values(world, maintained, endpoint, name):
    now = world["now"]
    check_basic(world, endpoint, name, now - timedelta(hours=1), now, 60)          # 1-minute tier (raw part)
    five_days = now - timedelta(days=5)
    check_basic(world, endpoint, name, five_days, five_days + timedelta(hours=3), 60)   # 1-minute tier table
    check_basic(world, endpoint, name, now - timedelta(days=30), now, 1800)        # 5-minute tier
    check_basic(world, endpoint, name, now - timedelta(days=100), now, 3 * 3600)   # 1-hour tier


@pytest.mark.parametrize("name", ["single", "counted"])
def test_percentiles_from_sketches_within_the_error_bound(world, maintained, endpoint, name):
    now = world["now"]
    start = now - timedelta(days=30)
    wanted = ["p0", "p10", "p50", "p90", "p99", "p100"]
    points = statistics(endpoint, name, start, now, 3600, ExtendedStatistics=wanted)
    want = expected(world, name, limits_start(start, 3600, now), now, 3600)
    assert len(points) == len(want)
    for p in points:
        samples = want[p["Timestamp"].timestamp()][4]
        for e in wanted:
            exact = stats.percentile(samples, stats.percentile_of(e))
            assert abs(p["ExtendedStatistics"][e] - exact) <= sketch.ALPHA * abs(exact) * (1 + 1e-9), (p, e)
    got = endpoint.client().get_metric_data(   # GetMetricData reads the same tiers (series_statistics)
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": name,
                            "Dimensions": [{"Name": "Host", "Value": "a"}]}, "Period": 86400, "Stat": "p90"}}],
        StartTime=start, EndTime=now)["MetricDataResults"][0]
    days = expected(world, name, limits_start(start, 86400, now), now, 86400)
    assert len(got["Values"]) == len(days)
    for ts, v in zip(got["Timestamps"], got["Values"]):
        exact = stats.percentile(days[ts.timestamp()][4], 90)
        assert abs(v - exact) <= sketch.ALPHA * abs(exact) * (1 + 1e-9)


def limits_start(start: datetime, period: int, now: datetime) -> datetime:
    from eucadb.services.cloudwatch import limits
    return limits.round_start(start, period, now)


def test_second_run_changes_nothing_and_late_rows_count_once(world, maintained, endpoint):
    admin, today = world["admin"], world["today"]
    after = snapshot(admin)
    assert after != maintained
    partitions.run(admin, today)
    assert snapshot(admin) == after
    # A row AWS would accept (5 days old) whose raw day is gone: it lands in the default partition,
    # is read at once, and after the next run sits in the tiers, still counted once.
    late = world["now"] - timedelta(days=5, minutes=7)
    sid = world["ids"]["single"]
    with world["writer"].begin() as conn:
        conn.execute(text("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, "
                          "unit, samples) VALUES (:sid, :ts, 1, 1000, 1000, 1000, 'None', ARRAY[1000::float8])"),
                     {"sid": sid, "ts": late})
    hour = late.replace(minute=0, second=0, microsecond=0)
    _, s, _, _, _ = expected(world, "single", hour, hour + timedelta(hours=1), 3600)[hour.timestamp()]

    def hour_sum() -> tuple:
        (p,) = statistics(endpoint, "single", hour, hour + timedelta(hours=1), 3600,
                          Statistics=["Sum", "SampleCount", "Maximum"])
        return p["Sum"], p["SampleCount"], p["Maximum"]
    before = hour_sum()
    assert before == (s + 1000, 61, 1000)
    partitions.run(admin, today)
    assert hour_sum() == before
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM metric_datapoints_default")).scalar() == 0
    settled = snapshot(admin)
    partitions.run(admin, today)
    assert snapshot(admin) == settled
