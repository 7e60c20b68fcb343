"""The percentile sketch of the rollup tiers (sketch.py): the documented 1 % relative-error bound,
keys for every value CloudWatch accepts, and the SQL bucketing agreeing with the Python one."""
from __future__ import annotations

import random

import psycopg2

from eucadb.services.cloudwatch import limits, sketch, stats

EDGES = [limits.VALUE_MIN, -limits.VALUE_MIN, limits.VALUE_MAX, -limits.VALUE_MAX, 0.0, 1.0, -1.0, 1e-3, 123.456]


def test_every_accepted_value_has_a_smallint_key_within_alpha():
    rnd = random.Random(3)
    values = EDGES + [rnd.choice((-1, 1)) * 2.0 ** rnd.uniform(-260, 360) for _ in range(5000)]
    for v in values:
        k = sketch.key_of(v)
        assert -32768 <= k <= 32767
        assert abs(sketch.value_of(k) - v) <= sketch.ALPHA * abs(v) * (1 + 1e-12), v
    ordered = sorted(values)
    assert [sketch.key_of(v) for v in ordered] == sorted(sketch.key_of(v) for v in ordered)   # key order = value order


def test_percentiles_from_a_sketch_within_the_bound():
    rnd = random.Random(5)
    pairs = [(rnd.lognormvariate(0, 2) * rnd.choice((-1, 1, 1, 1)), float(rnd.randint(1, 4))) for _ in range(3000)]
    keys, counts = sketch.build(pairs)
    approx = sketch.pairs(keys, counts)
    for p in (0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 100):
        exact = stats.percentile(pairs, p)
        assert abs(stats.percentile(approx, p) - exact) <= sketch.ALPHA * abs(exact) * (1 + 1e-12), p


def test_sql_keys_agree_with_python(pg_server):
    rnd = random.Random(9)
    values = EDGES + [rnd.choice((-1, 1)) * 2.0 ** rnd.uniform(-260, 360) for _ in range(2000)]
    conn = psycopg2.connect(pg_server.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT v, {sketch.key_sql('v')} FROM unnest(%s::float8[]) AS t(v)", (values,))
            got = cur.fetchall()
    finally:
        conn.close()
    mismatched = [(v, k) for v, k in got if k != sketch.key_of(v)]
    # ln() may round differently at an exact bucket edge; such a value is still within α of its bucket
    assert len(mismatched) <= 2, mismatched
    for v, k in mismatched:
        assert abs(sketch.value_of(k) - v) <= sketch.ALPHA * abs(v) * (1 + 1e-9)


def test_reads_pick_the_tier_aws_answers_from():
    """AWS "Metrics retention": < 60 s within 3 h, 60 s within 15 d, 300 s within 63 d, 3600 s beyond."""
    from datetime import datetime, timedelta, timezone

    from eucadb.services.cloudwatch import tiers
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    cases = [(timedelta(hours=1), 10, None), (timedelta(hours=1), 60, 60), (timedelta(days=14), 300, 60),
             (timedelta(days=15), 60, 60), (timedelta(days=16), 300, 300), (timedelta(days=63), 3600, 300),
             (timedelta(days=64), 3600, 3600), (timedelta(days=455), 86400, 3600)]
    for age, period, seconds in cases:
        tier = tiers.pick(now - age, period, now)
        assert (tier.seconds if tier else None) == seconds, (age, period)
