"""The storage tiers CloudWatch keeps, and which one a read uses.

AWS: "Data points with a period of less than 60 seconds are available for 3 hours [...] 60 seconds
[...] for 15 days, 300 seconds [...] for 63 days, 3600 seconds [...] for 455 days" (CloudWatch
concepts, "Metrics retention"). Raw datapoints sit in `metric_datapoints` until the leader's daily
maintenance rolls a closed day up into every tier and drops it (rollups.py); each tier table then
holds its own retention. A read of tier T is one SQL statement over T's table UNION ALL the raw rows
not yet rolled up: one snapshot, and a roll-up moves rows from raw to the tiers in one transaction,
so every datapoint is counted exactly once, before, during and after maintenance.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from eucadb.services.cloudwatch import datapoints, limits, sketch

RAW_TABLE = "metric_datapoints"


@dataclass(frozen=True)
class Tier:
    seconds: int            # bucket width
    table: str              # where its aggregates live
    retention: timedelta    # dropped past this age (partition by partition)
    span_days: int          # width of one partition


ROLLUPS = (Tier(60, "metric_rollup_1m", timedelta(days=15), 1),
           Tier(300, "metric_rollup_5m", timedelta(days=63), 7),
           Tier(3600, "metric_rollup_1h", timedelta(days=455), 28))
BY_SECONDS = {t.seconds: t for t in ROLLUPS}


def pick(start: datetime, period: int, now: datetime) -> Tier | None:
    """The tier AWS answers from for a query starting at `start` (None: raw, sub-minute periods
    within 3 hours). The coarsest granularity the start's age allows, at least 1 minute."""
    if period < 60:
        return None
    age = now - start
    granularity = next((g for horizon, g in limits.TIERS if age <= horizon), limits.TIERS[-1][1])
    return BY_SECONDS[max(granularity, 60)]


_BUCKET = "floor(extract(epoch FROM ts) / :period)::bigint"
_WHERE = "series_id = :sid AND ts >= :start AND ts < :end AND (CAST(:unit AS text) IS NULL OR unit = :unit)"
_RAW_UNIT = "coalesce(unit, 'None')"


def _aggregate_sql(tier: Tier):
    return text(f"""
        SELECT b, unit, sum(sample_count), sum(sum), min(minimum), max(maximum) FROM (
            SELECT {_BUCKET} AS b, unit, sample_count, sum, minimum, maximum FROM {tier.table} WHERE {_WHERE}
            UNION ALL
            SELECT {_BUCKET}, {_RAW_UNIT}, sample_count, sum, minimum, maximum FROM {RAW_TABLE} WHERE {_WHERE}
        ) x GROUP BY b, unit ORDER BY b, unit""")


def _samples_sql(tier: Tier):
    return text(f"""
        SELECT {_BUCKET}, unit, NULL::double precision[], NULL::double precision[], sketch_keys, sketch_counts
        FROM {tier.table} WHERE {_WHERE} AND sketch_keys IS NOT NULL
        UNION ALL
        SELECT {_BUCKET}, {_RAW_UNIT}, samples, sample_counts, NULL, NULL
        FROM {RAW_TABLE} WHERE {_WHERE} AND samples IS NOT NULL""")


AGGREGATE = {t.seconds: _aggregate_sql(t) for t in ROLLUPS}
SAMPLES = {t.seconds: _samples_sql(t) for t in ROLLUPS}


def aggregate(pools, tier: Tier | None, series_id: int, start: datetime, end: datetime, period: int,
              unit: str | None) -> list[datapoints.Bucket]:
    """Per period and unit, from `tier` and the raw rows not rolled up yet (raw only when None)."""
    if tier is None:
        return datapoints.aggregate(pools, series_id, start, end, period, unit)
    args = {"sid": series_id, "start": start, "end": end, "period": period, "unit": unit}
    with pools.session(datapoints.REMOTE) as s:
        rows = s.execute(AGGREGATE[tier.seconds], args).all()
    return [datapoints.Bucket(b * period, c, sm, lo, hi, u) for b, u, c, sm, lo, hi in rows]


def samples(pools, tier: Tier | None, series_id: int, start: datetime, end: datetime, period: int,
            unit: str | None) -> dict[tuple[float, str], list[tuple[float, float]]]:
    """Per (period start, unit): (value, count) pairs — exact raw samples and sketch buckets."""
    if tier is None:
        return datapoints.samples(pools, series_id, start, end, period, unit)
    args = {"sid": series_id, "start": start, "end": end, "period": period, "unit": unit}
    out: dict[tuple[float, str], list[tuple[float, float]]] = {}
    with pools.session(datapoints.REMOTE) as s:
        for b, u, values, counts, keys, key_counts in s.execute(SAMPLES[tier.seconds], args):
            mine = out.setdefault((b * period, u), [])
            if values is not None:
                mine.extend(zip(values, counts or [1.0] * len(values)))
            else:
                mine.extend(sketch.pairs(keys, key_counts))
    return out
