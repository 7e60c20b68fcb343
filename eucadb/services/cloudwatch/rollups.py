"""Roll raw datapoints up into the tiers (tiers.py), run by the leader's daily partition maintenance
as the admin role: the writer role may only INSERT raw rows, never touch an aggregate.

A closed raw day moves, in one transaction, into every tier (1 min, 5 min, 1 h: exact SampleCount /
Sum / Minimum / Maximum per series, unit and bucket, plus a percentile sketch, sketch.py) and its
partition is dropped. Rows that arrive late for a day already moved (AWS accepts timestamps two weeks
old) land in the raw DEFAULT partition and are moved (DELETE … RETURNING) by the next run, merged
into the buckets already there (ON CONFLICT on series+bucket+unit). A row is therefore rolled up
exactly once — it leaves raw in the transaction that adds it to the tiers — so re-running a roll-up,
or a run that failed half way, never counts anything twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from eucadb.services.cloudwatch import partitions, sketch
from eucadb.services.cloudwatch.tiers import RAW_TABLE, ROLLUPS, Tier

RAW_DAYS = 2            # today and yesterday stay raw: ≥ 24 h of high-resolution data (AWS: 3 h)
LOCK_KEY = 0x63770005   # advisory lock: one roll-up at a time, whichever leader runs it
EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
ATTEMPTS = 3            # a raw day that gains rows while being rolled up is tried again

_SETUP = """
CREATE TEMP TABLE IF NOT EXISTS cw_roll_stats (series_id bigint, unit text, ts timestamptz,
    sample_count float8, sum float8, minimum float8, maximum float8) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS cw_roll_pairs (series_id bigint, unit text, ts timestamptz,
    k smallint, c real) ON COMMIT DELETE ROWS"""

_COLUMNS = "series_id, ts, unit, sample_count, sum, minimum, maximum, samples, sample_counts"

# One statement, one snapshot: the source rows (a raw partition, or late rows deleted from the
# default partition) become per-minute aggregates and per-minute sketch buckets in temp tables.
_STAGE = f"""
WITH src AS ({{source}}),
st AS (INSERT INTO cw_roll_stats
       SELECT series_id, coalesce(unit, 'None'), date_bin('60 seconds', ts, {EPOCH}), sum(sample_count),
              sum(sum), min(minimum), max(maximum)
       FROM src GROUP BY 1, 2, 3),
pr AS (INSERT INTO cw_roll_pairs
       SELECT series_id, coalesce(unit, 'None'), date_bin('60 seconds', ts, {EPOCH}), {sketch.key_sql('u.v')},
              sum(u.c)
       FROM src, unnest(samples, coalesce(sample_counts, array_fill(1::float8, ARRAY[cardinality(samples)])))
            AS u(v, c)
       WHERE samples IS NOT NULL AND u.c > 0 GROUP BY 1, 2, 3, 4)
SELECT count(*) FROM src"""

# Merge the staged minutes into one tier: fresh buckets plus what the tier already holds for them
# (late rows), sketches folded to at most MAX_KEYS buckets (lowest values folded), then upserted.
_MERGE = f"""
WITH fresh AS (
    SELECT series_id, unit, date_bin(:width, ts, {EPOCH}) AS ts, sum(sample_count) AS sample_count,
           sum(sum) AS sum, min(minimum) AS minimum, max(maximum) AS maximum
    FROM cw_roll_stats WHERE ts >= :cutoff GROUP BY 1, 2, 3),
old AS (
    SELECT t.series_id, t.unit, t.ts, t.sample_count, t.sum, t.minimum, t.maximum, t.sketch_keys,
           t.sketch_counts
    FROM {{table}} t JOIN fresh f USING (series_id, unit, ts)),
stats AS (
    SELECT series_id, unit, ts, sum(sample_count) AS sample_count, sum(sum) AS sum,
           min(minimum) AS minimum, max(maximum) AS maximum
    FROM (SELECT series_id, unit, ts, sample_count, sum, minimum, maximum FROM fresh
          UNION ALL SELECT series_id, unit, ts, sample_count, sum, minimum, maximum FROM old) a
    GROUP BY 1, 2, 3),
pairs AS (
    SELECT series_id, unit, ts, k, sum(c) AS c
    FROM (SELECT series_id, unit, date_bin(:width, ts, {EPOCH}) AS ts, k, c FROM cw_roll_pairs
          WHERE ts >= :cutoff
          UNION ALL SELECT o.series_id, o.unit, o.ts, u.k, u.c
          FROM old o, unnest(o.sketch_keys, o.sketch_counts) AS u(k, c)) p
    GROUP BY 1, 2, 3, 4),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY series_id, unit, ts ORDER BY k DESC) AS r FROM pairs),
kept AS (
    SELECT series_id, unit, ts, min(k) AS lowest FROM ranked WHERE r <= {sketch.MAX_KEYS} GROUP BY 1, 2, 3),
folded AS (
    SELECT r.series_id, r.unit, r.ts, CASE WHEN r.r > {sketch.MAX_KEYS} THEN kept.lowest ELSE r.k END AS k,
           sum(r.c) AS c
    FROM ranked r JOIN kept USING (series_id, unit, ts) GROUP BY 1, 2, 3, 4),
sketches AS (
    SELECT series_id, unit, ts, array_agg(k ORDER BY k) AS keys, array_agg(c ORDER BY k) AS counts
    FROM folded GROUP BY 1, 2, 3)
INSERT INTO {{table}} (series_id, ts, unit, sample_count, sum, minimum, maximum, sketch_keys, sketch_counts)
SELECT s.series_id, s.ts, s.unit, s.sample_count, s.sum, s.minimum, s.maximum, k.keys, k.counts
FROM stats s LEFT JOIN sketches k USING (series_id, unit, ts)
ON CONFLICT (series_id, ts, unit) DO UPDATE SET
    sample_count = EXCLUDED.sample_count, sum = EXCLUDED.sum, minimum = EXCLUDED.minimum,
    maximum = EXCLUDED.maximum, sketch_keys = EXCLUDED.sketch_keys, sketch_counts = EXCLUDED.sketch_counts"""


@dataclass
class RollUp:
    """What one run moved: raw partitions dropped, late rows taken from the default partition."""

    dropped: list[str] = field(default_factory=list)
    raw_rows: int = 0
    late_rows: int = 0
    busy: list[str] = field(default_factory=list)   # raw days still gaining rows: rolled up next run


class RawDayChanged(Exception):
    """A raw day gained rows between staging and the drop: nothing was committed, try again."""


def boundary(today: date) -> date:
    """Raw rows before this day are rolled up."""
    return today - timedelta(days=RAW_DAYS - 1)


def _cutoff(tier: Tier, today: date):
    return partitions.midnight(today) - tier.retention


def _merge(conn: Connection, today: date) -> None:
    for tier in ROLLUPS:
        conn.execute(text(_MERGE.format(table=tier.table)),
                     {"width": f"{tier.seconds} seconds", "cutoff": _cutoff(tier, today)})


def _stage(conn: Connection, source: str, args: dict | None = None) -> int:
    conn.exec_driver_sql(_SETUP)
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    return conn.execute(text(_STAGE.format(source=source)), args or {}).scalar()


def _roll_day(conn: Connection, name: str, today: date) -> int:
    """Stage one raw partition, merge it into the tiers, drop it — if no row came in meanwhile."""
    seen = _stage(conn, f"SELECT {_COLUMNS} FROM {name}")
    _merge(conn, today)
    # Writers wait from here to commit: the count is then final (raw rows are never deleted but here).
    conn.execute(text(f"LOCK TABLE {RAW_TABLE} IN SHARE ROW EXCLUSIVE MODE"))
    if conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() != seen:
        raise RawDayChanged(name)
    conn.execute(text(f"DROP TABLE {name}"))
    return seen


def ensure_tiers(conn: Connection, today: date) -> list[str]:
    """Partitions of every tier from its retention horizon to a few days ahead (late rows and the
    first run after an upgrade roll up into past buckets)."""
    created = []
    for tier in ROLLUPS:
        first = (partitions.midnight(today) - tier.retention).date()
        days = [first + timedelta(days=i) for i in range((today - first).days + 4)]
        created += partitions.ensure(conn, tier.table, days, tier.span_days)
    return created


def roll_up(engine: Engine, today: date) -> RollUp:
    """Move every raw row before boundary(today) into the tiers; each raw day its own transaction."""
    done = RollUp()
    with engine.connect() as conn:
        days = partitions.existing(conn, RAW_TABLE)
    for day, name in sorted(days.items()):
        if day >= boundary(today):
            continue
        for attempt in range(ATTEMPTS):
            try:
                with engine.begin() as conn:
                    done.raw_rows += _roll_day(conn, name, today)
                done.dropped.append(name)
                break
            except RawDayChanged:
                if attempt == ATTEMPTS - 1:   # writers keep adding to it: left raw for the next run
                    done.busy.append(name)
    with engine.begin() as conn:
        late = _stage(conn, f"DELETE FROM {RAW_TABLE}_default WHERE ts < :before RETURNING {_COLUMNS}",
                      {"before": partitions.midnight(boundary(today))})
        _merge(conn, today)
    done.raw_rows += late
    done.late_rows = late
    return done


def drop_expired(conn: Connection, today: date) -> list[str]:
    """Each tier's partitions past its retention."""
    return [name for tier in ROLLUPS
            for name in partitions.drop_before(conn, _cutoff(tier, today).date(), (tier.table,), tier.span_days)]


def restrict_writers(conn: Connection) -> None:
    """Only the maintenance role writes the tiers: INSERT (granted to the writer by default
    privileges on every new partition, and by the instance's setup on every table) is revoked."""
    roles = [r for (r,) in conn.execute(text("SELECT rolname FROM pg_roles WHERE NOT rolsuper "
                                             "AND rolname !~ '^pg_'"))]
    for tier in ROLLUPS:
        for name in [tier.table, f"{tier.table}_default", *partitions.existing(conn, tier.table).values()]:
            for role in roles:
                conn.execute(text(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {name} FROM "{role}"'))
