"""Operators between scalars, time series and arrays of time series.

"Missing values in a time series are treated as 0. If the value of a data point causes a function
to attempt to divide by zero, the data point is dropped." and, for comparisons, "only one of the
time series has a value for a particular time stamp, the function treats the missing value in the
other time series as 0" (using-metric-math.html, Basic arithmetic functions / Comparison and
logical operators). Supported operand pairs: S S, TS TS, TS S, TS[] TS, TS[] S — two arrays are
refused. Non-finite results (x/0, overflow) are dropped and reported as an ArithmeticError message.
"""
from __future__ import annotations

import math
import operator
from typing import Callable

from eucadb.services.cloudwatch.math.errors import ExpressionError
from eucadb.services.cloudwatch.math.series import Series, Value, finite, kind


def _div(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError, ZeroDivisionError):
        return math.nan


def _truth(f: Callable[[float, float], bool]) -> Callable[[float, float], float]:
    return lambda a, b: 1.0 if f(a, b) else 0.0


BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div, "^": _pow,
    "==": _truth(operator.eq), "!=": _truth(operator.ne), "<": _truth(operator.lt), ">": _truth(operator.gt),
    "<=": _truth(operator.le), ">=": _truth(operator.ge),
    "&&": _truth(lambda a, b: a != 0 and b != 0), "||": _truth(lambda a, b: a != 0 or b != 0),
}


class Dropped:
    """Counts the datapoints dropped for non-finite values (the query's ArithmeticError message)."""

    def __init__(self) -> None:
        self.count = 0

    def keep(self, points: dict[int, float]) -> dict[int, float]:
        out = {t: v for t, v in points.items() if finite(v)}
        self.count += len(points) - len(out)
        return out


def _numeric(value: Value, op: str) -> None:
    if not isinstance(value, (float, Series, list)):
        raise ExpressionError(f"The operator {op} cannot be applied to a {kind(value)}")


def binary(op: str, left: Value, right: Value, dropped: Dropped) -> Value:
    _numeric(left, op)
    _numeric(right, op)
    f = BINARY[op]
    if isinstance(left, list) and isinstance(right, list):
        raise ExpressionError(f"The operator {op} cannot combine two arrays of time series (TS[] {op} TS[])")
    if isinstance(left, list):
        return [binary(op, item, right, dropped) for item in left]
    if isinstance(right, list):
        return [binary(op, left, item, dropped) for item in right]
    if isinstance(left, Series) and isinstance(right, Series):
        stamps = left.points.keys() | right.points.keys()
        return left.with_points(dropped.keep({t: f(left.points.get(t, 0.0), right.points.get(t, 0.0)) for t in stamps}))
    if isinstance(left, Series):
        return left.with_points(dropped.keep({t: f(v, right) for t, v in left.points.items()}))
    if isinstance(right, Series):
        return right.with_points(dropped.keep({t: f(left, v) for t, v in right.points.items()}))
    out = f(left, right)
    if not finite(out):
        dropped.count += 1
    return out


def elementwise(value: Value, f: Callable[[float], float], name: str, dropped: Dropped) -> Value:
    """A per-datapoint function over S, TS or TS[] (ABS, CEIL, unary minus, NOT ...)."""
    _numeric(value, name)
    if isinstance(value, list):
        return [elementwise(v, f, name, dropped) for v in value]
    if isinstance(value, Series):
        return value.with_points(dropped.keep({t: f(v) for t, v in value.points.items()}))
    return f(value)


UNARY: dict[str, Callable[[float], float]] = {"-": operator.neg, "!": lambda v: 1.0 if v == 0 else 0.0}
