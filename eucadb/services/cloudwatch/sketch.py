"""A relative-error quantile sketch (DDSketch-style) stored with every rolled-up aggregate.

A sample v > 0 falls in bucket i = ceil(log_γ v), γ = (1 + α) / (1 − α); the bucket stands for the
value 2γ^i / (γ + 1), which is within α·v of every v in it. Negative samples use the mirror buckets,
zero its own. Buckets are stored as two arrays, `keys` (smallint, ascending = value order) and
`counts` (real): key = OFFSET + i for v > 0, −(OFFSET + i) for v < 0, 0 for 0. Every value CloudWatch
accepts (0 or 2^-260 ≤ |v| ≤ 2^360) has a key in smallint range.

Error bound: a percentile answered from sketches (mixed with exact raw samples or not) is within
α = 1 % of the exact nearest-rank percentile of the samples, relative to its magnitude, and inside
[Minimum, Maximum] of its period. A sketch keeps at most MAX_KEYS buckets; beyond that its lowest
buckets are folded into the lowest kept one (only percentiles whose rank falls in the folded mass
lose the bound; with α = 1 % that takes samples spanning more than 8 decades in one aggregate).
The bucketing is done in SQL (KEY_SQL) when rolling up; Python only decodes (value_of).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
OFFSET = 20000          # ceil(log_γ 2^-260) = -9010, ceil(log_γ 2^360) = 12476: keys fit in ±32767
MAX_KEYS = 1024


def key_sql(column: str) -> str:
    """SQL for the key of a double precision `column` (mirrors key_of)."""
    mag = f"({OFFSET} + ceil(ln(abs({column})) / {LN_GAMMA!r}))"
    return f"(CASE WHEN {column} > 0 THEN {mag} WHEN {column} < 0 THEN -{mag} ELSE 0 END)::smallint"


def key_of(value: float) -> int:
    if value == 0:
        return 0
    k = OFFSET + math.ceil(math.log(abs(value)) / LN_GAMMA)
    return k if value > 0 else -k


def value_of(key: int) -> float:
    """The value a bucket stands for (relative error ≤ ALPHA for every sample in it)."""
    if key == 0:
        return 0.0
    v = 2 * GAMMA ** (abs(key) - OFFSET) / (GAMMA + 1)
    return v if key > 0 else -v


def pairs(keys: Sequence[int] | None, counts: Sequence[float] | None) -> list[tuple[float, float]]:
    """(value, count) pairs of a stored sketch, for stats.percentile."""
    return [(value_of(k), float(c)) for k, c in zip(keys or (), counts or ())]


def clamp(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def build(values: Iterable[tuple[float, float]]) -> tuple[list[int], list[float]]:
    """A sketch of (value, count) pairs in Python (tests and bench; production builds it in SQL)."""
    out: dict[int, float] = {}
    for v, c in values:
        if c > 0:
            out[key_of(v)] = out.get(key_of(v), 0.0) + c
    keys = sorted(out)
    return keys, [out[k] for k in keys]
