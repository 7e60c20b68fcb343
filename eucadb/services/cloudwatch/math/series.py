"""Values an expression computes: scalars (float), time series, arrays of time series, strings and
bare keywords; and the query window that gives "missing" its meaning (FILL, TIME_SERIES)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Union

from eucadb.services.cloudwatch.math.errors import ExpressionError
from eucadb.services.cloudwatch.math.nodes import Word

MAX_GRID = 100_800   # GetMetricData's own datapoint ceiling per call


@dataclass(frozen=True)
class Series:
    """One time series: epoch seconds → value, with what its label and dynamic labels need."""
    points: dict[int, float]
    label: str
    period: int
    props: dict[str, str] = field(default_factory=dict)   # MetricName, Namespace, Dim.X, Stat, Period

    def sorted(self) -> list[tuple[int, float]]:
        return sorted(self.points.items())

    def values(self) -> list[float]:
        return [v for _, v in self.sorted()]

    def with_points(self, points: dict[int, float]) -> "Series":
        return replace(self, points=points)


Value = Union[float, Series, list, str, Word]   # list = an array of Series


@dataclass(frozen=True)
class Window:
    """The request's StartTime and EndTime in epoch seconds."""
    start: int
    end: int

    def grid(self, period: int) -> range:
        """Every period start in the window, as the buckets of a MetricStat are placed."""
        first = self.start // period * period
        if (self.end - first) // period > MAX_GRID:
            raise ExpressionError(f"The time range holds more than {MAX_GRID} datapoints at period {period}")
        return range(first, self.end, period)


def kind(value: Value) -> str:
    """What a value is, for messages (the doc's S, TS, TS[] spelled out)."""
    if isinstance(value, Series):
        return "time series"
    if isinstance(value, list):
        return "array of time series"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Word):
        return f"keyword {value.name}"
    return "scalar"


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
