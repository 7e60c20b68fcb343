"""The metric math functions, one small function each, in one table (name → arity, implementation).

Semantics are those of the function table of "Metric math syntax and functions"
(using-metric-math.html). Where AWS does not say, the choice made is written next to the function.
"""
from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

from eucadb.services.cloudwatch.limits import HIGH_RES_PERIODS
from eucadb.services.cloudwatch.math.errors import ExpressionError
from eucadb.services.cloudwatch.math.nodes import Word
from eucadb.services.cloudwatch.math.ops import Dropped, elementwise
from eucadb.services.cloudwatch.math.series import Series, Value, Window, kind
from eucadb.services.cloudwatch.stats import BASIC, percentile_of


class Context(Protocol):
    window: Window
    period: int
    dropped: Dropped

    def metrics(self, contains: str) -> list[Series]: ...

    def search(self, query: str, stat: str, period: int) -> list[Series]: ...


# --- argument checks -------------------------------------------------------------------------

def _series(name: str, value: Value, allow_array: bool = True) -> None:
    ok = isinstance(value, Series) or (allow_array and isinstance(value, list))
    if not ok:
        wanted = "a time series or an array of time series" if allow_array else "a time series"
        raise ExpressionError(f"{name} expects {wanted}, not a {kind(value)}")


def _array(name: str, value: Value) -> list[Series]:
    if not isinstance(value, list):
        raise ExpressionError(f"{name} expects an array of time series, not a {kind(value)}")
    return value


def _scalar(name: str, value: Value) -> float:
    if not isinstance(value, float):
        raise ExpressionError(f"{name} expects a scalar number, not a {kind(value)}")
    return value


def _word(name: str, value: Value, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, Word) or value.name not in allowed:
        raise ExpressionError(f"{name} expects one of {', '.join(allowed)}, not {value.name if isinstance(value, Word) else kind(value)}")
    return value.name


def _each(value: Value, f: Callable[[Series], Series]) -> Value:
    return [f(s) for s in value] if isinstance(value, list) else f(value)   # type: ignore[arg-type]


# --- reductions: TS → S, TS[] → TS -------------------------------------------------------------

def _pstdev(values: list[float]) -> float:
    # Population standard deviation (AWS does not say which; a TS is the whole population queried).
    return statistics.pstdev(values) if values else math.nan


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": lambda v: math.fsum(v) if v else math.nan,
    "AVG": lambda v: math.fsum(v) / len(v) if v else math.nan,
    "MIN": lambda v: min(v) if v else math.nan,
    "MAX": lambda v: max(v) if v else math.nan,
    "STDDEV": _pstdev,
    "DATAPOINT_COUNT": lambda v: float(len(v)),
}
# "The AVG of an array of time series returns a single time series. Missing values are treated as
# 0." (AVG row); SUM is the same either way. MIN, MAX and STDDEV of an array use the values present.
MISSING_AS_ZERO = {"SUM", "AVG"}


def _reduce(name: str) -> Callable[[Context, list[Value]], Value]:
    f = REDUCERS[name]

    def run(ctx: Context, args: list[Value]) -> Value:
        (x,) = args
        _series(name, x)
        if isinstance(x, Series):
            return f(x.values())
        if not x:
            return Series({}, name, ctx.period)
        stamps = sorted(set().union(*(s.points.keys() for s in x)))
        if name in MISSING_AS_ZERO:
            points = {t: f([s.points.get(t, 0.0) for s in x]) for t in stamps}
        else:
            points = {t: f([s.points[t] for s in x if t in s.points]) for t in stamps}
        return Series(ctx.dropped.keep(points), x[0].label, x[0].period)
    return run


def metric_count(ctx: Context, args: list[Value]) -> Value:
    return float(len(_array("METRIC_COUNT", args[0])))


# --- per-datapoint functions ------------------------------------------------------------------

def _log(base: float | None) -> Callable[[float], float]:
    def f(v: float) -> float:
        if v <= 0:
            return math.nan
        return math.log(v) if base is None else math.log(v, base)
    return f


ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "ABS": abs, "CEIL": lambda v: float(math.ceil(v)), "FLOOR": lambda v: float(math.floor(v)),
    "LOG": _log(None), "LOG10": lambda v: math.log10(v) if v > 0 else math.nan,
}


def _elementwise(name: str) -> Callable[[Context, list[Value]], Value]:
    def run(ctx: Context, args: list[Value]) -> Value:
        _series(name, args[0])
        return elementwise(args[0], ELEMENTWISE[name], name, ctx.dropped)
    return run


# --- functions of consecutive datapoints ------------------------------------------------------

def _pairwise(name: str, f: Callable[[int, float, int, float], float]) -> Callable[[Context, list[Value]], Value]:
    """RATE, DIFF, DIFF_TIME: each datapoint against the preceding one; the first has none and is
    left out ("the difference between each value in the time series and the preceding value")."""
    def one(s: Series) -> Series:
        pts = s.sorted()
        return s.with_points({t: f(t0, v0, t, v) for (t0, v0), (t, v) in zip(pts, pts[1:])})

    def run(ctx: Context, args: list[Value]) -> Value:
        _series(name, args[0])
        return _each(args[0], one)
    return run


def running_sum(ctx: Context, args: list[Value]) -> Value:
    def one(s: Series) -> Series:
        total, out = 0.0, {}
        for t, v in s.sorted():
            total += v
            out[t] = total
        return s.with_points(out)
    _series("RUNNING_SUM", args[0])
    return _each(args[0], one)


# --- FILL -------------------------------------------------------------------------------------

def _fill_repeat(s: Series, grid: range) -> dict[int, float]:
    """Each missing value takes the most recent actual value before it; a gap at the start of the
    range (nothing before it) stays missing."""
    out, last = dict(s.points), None
    for t in grid:
        if t in s.points:
            last = s.points[t]
        elif last is not None:
            out[t] = last
    return out


def _fill_linear(s: Series, grid: range) -> dict[int, float]:
    """Missing values inside a gap are interpolated linearly between the values at its two ends;
    gaps at either end of the range (one end only) stay missing."""
    out = dict(s.points)
    known = s.sorted()
    stamps = [t for t, _ in known]
    for t in grid:
        i = bisect.bisect_left(stamps, t)
        if t in s.points or i == 0 or i == len(stamps):
            continue
        (t0, v0), (t1, v1) = known[i - 1], known[i]
        out[t] = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return out


def fill(ctx: Context, args: list[Value]) -> Value:
    x, how = args
    _series("FILL", x)

    def one(s: Series, filler: Value) -> Series:
        grid = ctx.window.grid(s.period)
        if isinstance(filler, Word):
            mode = _word("FILL", filler, ("REPEAT", "LINEAR"))
            return s.with_points(_fill_repeat(s, grid) if mode == "REPEAT" else _fill_linear(s, grid))
        if isinstance(filler, Series):
            extra = {t: filler.points[t] for t in grid if t not in s.points and t in filler.points}
        else:
            extra = {t: _scalar("FILL", filler) for t in grid if t not in s.points}
        return s.with_points({**s.points, **extra})

    if isinstance(how, list):
        raise ExpressionError("FILL expects a scalar, a time series, REPEAT or LINEAR as its second argument")
    return _each(x, lambda s: one(s, how))


# --- IF ---------------------------------------------------------------------------------------

def _pick(value: Value | None, t: int, when_true: bool) -> float | None:
    """The value IF takes at t from a branch: a scalar is itself; a series missing at t gives 0 in
    the true branch and drops the datapoint in the false branch (the "Using IF expressions" rules)."""
    if value is None:
        return None
    if isinstance(value, Series):
        return value.points.get(t, 0.0 if when_true else None)
    return value   # type: ignore[return-value]


def _if_series(cond: Series, a: Value, b: Value | None) -> Series:
    out = {}
    for t, c in cond.points.items():
        v = _pick(a, t, True) if c != 0 else _pick(b, t, False)
        if v is not None:
            out[t] = v
    return cond.with_points(out) if not isinstance(a, Series) else Series(out, a.label, cond.period, a.props)


def if_(ctx: Context, args: list[Value]) -> Value:
    cond, a, b = (args + [None])[:3]
    for branch in (a, b):
        if branch is not None and not isinstance(branch, (float, Series, list)):
            raise ExpressionError(f"IF expects scalars or time series as values, not a {kind(branch)}")
    if isinstance(cond, float):
        if cond != 0:
            return a
        return b if b is not None else Series({}, "", ctx.period)
    _series("IF", cond)
    if isinstance(cond, list):
        def member(v: Value | None, i: int) -> Value | None:
            if isinstance(v, list):
                if len(v) != len(cond):
                    raise ExpressionError("IF needs arrays of time series of the same length")
                return v[i]
            return v
        return [_if_series(c, member(a, i), member(b, i)) for i, c in enumerate(cond)]   # type: ignore[arg-type]
    if isinstance(a, list) or isinstance(b, list):
        raise ExpressionError("IF with a time series condition expects scalars or time series as values")
    return _if_series(cond, a, b)


# --- arrays -----------------------------------------------------------------------------------

def remove_empty(ctx: Context, args: list[Value]) -> Value:
    return [s for s in _array("REMOVE_EMPTY", args[0]) if s.points]


SORT_FUNCTIONS = ("AVG", "MIN", "MAX", "SUM", "STDDEV")


def sort(ctx: Context, args: list[Value]) -> Value:
    """SORT(TS[], AVG|MIN|MAX|SUM, ASC|DESC[, limit]). Empty series (no value to rank) go last in
    either order; ties keep the array's order."""
    if len(args) not in (3, 4):
        raise ExpressionError("SORT expects (TS[], FUNCTION, ASC|DESC) or (TS[], FUNCTION, ASC|DESC, limit)")
    array = _array("SORT", args[0])
    f = REDUCERS[_word("SORT", args[1], SORT_FUNCTIONS)]
    descending = _word("SORT", args[2], ("ASC", "DESC")) == "DESC"
    ranked = [(f(s.values()), i, s) for i, s in enumerate(array)]
    present = sorted((r for r in ranked if not math.isnan(r[0])), key=lambda r: (-r[0] if descending else r[0], r[1]))
    out = [s for _, _, s in present] + [s for v, _, s in ranked if math.isnan(v)]
    if len(args) == 4:
        limit = _scalar("SORT", args[3])
        if limit < 0 or limit != int(limit):
            raise ExpressionError("The limit of SORT must be a non-negative whole number")
        out = out[:int(limit)]
    return out


def slice_(ctx: Context, args: list[Value]) -> Value:
    """SLICE(TS[], start[, end]): zero-based, start inclusive, end exclusive."""
    array = _array("SLICE", args[0])
    bounds = [_scalar("SLICE", a) for a in args[1:]]
    if any(b < 0 or b != int(b) for b in bounds):
        raise ExpressionError("The bounds of SLICE must be non-negative whole numbers")
    return array[int(bounds[0]):int(bounds[1])] if len(bounds) == 2 else array[int(bounds[0]):]


def _end(name: str, index: int) -> Callable[[Context, list[Value]], Value]:
    def run(ctx: Context, args: list[Value]) -> Value:
        array = _array(name, args[0])
        return array[index] if array else Series({}, "", ctx.period)
    return run


# --- series made from the window --------------------------------------------------------------

def period(ctx: Context, args: list[Value]) -> Value:
    x = args[0]
    _series("PERIOD", x, allow_array=False)
    return float(x.period)   # type: ignore[union-attr]


def time_series(ctx: Context, args: list[Value]) -> Value:
    """A non-sparse series of the scalar at every period of the window (the query's period)."""
    value = _scalar("TIME_SERIES", args[0])
    return Series({t: value for t in ctx.window.grid(ctx.period)}, "", ctx.period)


def _utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


CALENDAR: dict[str, Callable[[int], float]] = {
    "MINUTE": lambda t: float(_utc(t).minute), "HOUR": lambda t: float(_utc(t).hour),
    "DAY": lambda t: float(_utc(t).isoweekday()),   # 1 = Monday ... 7 = Sunday
    "DATE": lambda t: float(_utc(t).day), "MONTH": lambda t: float(_utc(t).month),
    "YEAR": lambda t: float(_utc(t).year), "EPOCH": float,
}


def _calendar(name: str) -> Callable[[Context, list[Value]], Value]:
    """"take the period and range of the time series and return a new non-sparse time series where
    each value is based on its timestamp" (function table)."""
    def run(ctx: Context, args: list[Value]) -> Value:
        x = args[0]
        _series(name, x, allow_array=False)
        grid = ctx.window.grid(x.period)   # type: ignore[union-attr]
        return x.with_points({t: CALENDAR[name](t) for t in grid})   # type: ignore[union-attr]
    return run


# --- METRICS() and SEARCH() -------------------------------------------------------------------

def metrics(ctx: Context, args: list[Value]) -> Value:
    contains = args[0] if args else ""
    if not isinstance(contains, str):
        raise ExpressionError(f"METRICS expects a string, not a {kind(contains)}")
    return ctx.metrics(contains)


def search(ctx: Context, args: list[Value]) -> Value:
    if len(args) != 3 or not isinstance(args[0], str) or not isinstance(args[1], str) or not isinstance(args[2], float):
        raise ExpressionError("SEARCH expects ('search expression', 'Statistic', period)")
    stat, p = args[1], args[2]
    if stat not in BASIC and percentile_of(stat) is None:
        raise ExpressionError(f"The statistic {stat!r} of SEARCH is not valid (basic statistics and pNN.NN only)")
    if p != int(p) or not (p in HIGH_RES_PERIODS or (p >= 60 and p % 60 == 0)):
        raise ExpressionError("The period of SEARCH must be 1, 5, 10, 30 or a multiple of 60 seconds")
    return ctx.search(args[0], stat, int(p))


@dataclass(frozen=True)
class Spec:
    run: Callable[[Context, list[Value]], Value]
    min_args: int
    max_args: int


def _table() -> dict[str, Spec]:
    table = {name: Spec(_reduce(name), 1, 1) for name in REDUCERS}
    table.update({name: Spec(_elementwise(name), 1, 1) for name in ELEMENTWISE})
    table.update({name: Spec(_calendar(name), 1, 1) for name in CALENDAR})
    table.update({
        "METRIC_COUNT": Spec(metric_count, 1, 1),
        "RATE": Spec(_pairwise("RATE", lambda t0, v0, t, v: (v - v0) / (t - t0)), 1, 1),
        "DIFF": Spec(_pairwise("DIFF", lambda t0, v0, t, v: v - v0), 1, 1),
        "DIFF_TIME": Spec(_pairwise("DIFF_TIME", lambda t0, v0, t, v: float(t - t0)), 1, 1),
        "RUNNING_SUM": Spec(running_sum, 1, 1),
        "FILL": Spec(fill, 2, 2),
        "IF": Spec(if_, 2, 3),
        "REMOVE_EMPTY": Spec(remove_empty, 1, 1),
        "SORT": Spec(sort, 3, 4),
        "SLICE": Spec(slice_, 2, 3),
        "FIRST": Spec(_end("FIRST", 0), 1, 1),
        "LAST": Spec(_end("LAST", -1), 1, 1),
        "PERIOD": Spec(period, 1, 1),
        "TIME_SERIES": Spec(time_series, 1, 1),
        "METRICS": Spec(metrics, 0, 1),
        "SEARCH": Spec(search, 3, 3),
    })
    return table


FUNCTIONS: dict[str, Spec] = _table()

# Functions of AWS's table this endpoint does not compute, and why: refused by name rather than as
# an unknown function, so a client learns it is AWS's function and not served here (README).
NOT_SERVED: dict[str, str] = {
    "INSIGHT_RULE_METRIC": "Contributor Insights rules are not served by this endpoint",
    "SERVICE_QUOTA": "Service Quotas are not part of this cloud",
    "LAMBDA": "Lambda data sources are not part of this cloud",
}
