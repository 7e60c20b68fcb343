"""Pure statistics over stored rows: buckets, the five basic statistics, and percentiles.

Percentiles use the nearest-rank definition over the stored samples weighted by their counts: the
smallest sample v such that at least p% of all samples are ≤ v. Rows sent as StatisticSets carry no
samples and do not take part in percentiles (as on AWS).
"""
from __future__ import annotations

import math
import re
from typing import Iterable

PERCENTILE_RE = re.compile(r"p([0-9]{1,2}(\.[0-9]{1,10})?|100(\.0{1,10})?)")   # fullmatch; ASCII only
BASIC = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")


def percentile_of(stat: str) -> float | None:
    """`p99.5` → 99.5; None for anything else."""
    m = PERCENTILE_RE.fullmatch(stat)
    return float(stat[1:]) if m else None


def percentile(pairs: Iterable[tuple[float, float]], p: float) -> float | None:
    """Nearest-rank percentile of (value, count) pairs; None when there are no samples."""
    ordered = sorted((v, c) for v, c in pairs if c > 0)
    total = sum(c for _, c in ordered)
    if not ordered:
        return None
    rank = max(1.0, math.ceil(p / 100.0 * total - 1e-9))
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    return ordered[-1][0]


def basic(stat: str, count: float, total: float, low: float, high: float) -> float:
    return {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high,
            "Average": total / count if count else 0.0}[stat]
