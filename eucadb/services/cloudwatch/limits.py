"""AWS CloudWatch limits and validation rules, as published, in one place."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from eucadb.services.cloudwatch.errors import combination, invalid, missing
from eucadb.services.cloudwatch.model import service_model

MAX_BODY_BYTES = 1024 * 1024            # 1 MB per PutMetricData (as sent)
MAX_INFLATED_BYTES = 8 * MAX_BODY_BYTES  # guard against gzip bombs
MAX_DATUMS = 1000
MAX_DIMENSIONS = 30
MAX_VALUES = 150
MAX_DATAPOINTS = 1440
MAX_STATISTICS = 5
MAX_EXTENDED = 10
MAX_QUERIES = 500
MAX_DOCUMENT_DEPTH = 32                 # JSON/CBOR nesting; the deepest input in the model nests 8
MAX_STATE_REASON_DATA = 4000            # characters (the model's StateReasonData max)
MAX_ALARMS = 5000                       # metric and composite alarms together
PAST = timedelta(days=14)
FUTURE = timedelta(hours=2)
HIGH_RES_PERIODS = (1, 5, 10, 30)
# Retention tiers: data older than this is only kept (and answered) at this period granularity.
TIERS = ((timedelta(hours=3), 1), (timedelta(days=15), 60), (timedelta(days=63), 300), (timedelta(days=455), 3600))
VALUE_MAX = 2.0 ** 360
VALUE_MIN = 2.0 ** -260
NAME_RE = re.compile(r"^[^:].{0,254}$", re.S)
UNITS = frozenset(service_model().shape_for("StandardUnit").enum)


def is_missing(value) -> bool:
    """None, "" or [] (AWS treats an empty member as absent); truthy values short-circuit."""
    return not value and (value is None or value == "" or value == [])


def require(params: dict, *names: str) -> None:
    for name in names:
        if is_missing(params.get(name)):
            raise missing(name)


def check_length(name: str, value: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise invalid(f"The parameter {name} must be between {low} and {high} characters long.")


def value_ok(value: float) -> bool:
    """Zero or a magnitude in 2^-260..2^360 (NaN fails every comparison, infinities exceed the max)."""
    return value == 0 or VALUE_MIN <= abs(value) <= VALUE_MAX


def check_value(name: str, value: float) -> None:
    if not value_ok(value):
        raise invalid(f"The value {value} for parameter {name} is not supported (NaN, Infinity, or "
                      "magnitude outside 2^-260..2^360).")


def check_unit(unit: str | None) -> None:
    if unit is not None and unit not in UNITS:
        raise invalid(f"The parameter Unit must be one of {', '.join(sorted(UNITS))}.")


def check_dimensions(dims: list[dict], where: str) -> None:
    if len(dims) > MAX_DIMENSIONS:
        raise invalid(f"The collection {where}.Dimensions must not have a size greater than {MAX_DIMENSIONS}.")
    seen = set()
    for d in dims:
        name, value = d.get("Name"), d.get("Value")
        if is_missing(name) or is_missing(value):
            require(d, "Name", "Value")
        if not 1 <= len(name) <= 255:
            check_length("Dimensions.member.Name", name, 1, 255)
        if not 1 <= len(value) <= 1024:
            check_length("Dimensions.member.Value", value, 1, 1024)
        if name in seen:
            raise invalid(f"No metric may have duplicate dimension names ({name}).")
        seen.add(name)


def check_timestamp(ts: datetime, now: datetime) -> None:
    if not now - PAST <= ts <= now + FUTURE:
        raise invalid(f"The parameter MetricData.member.Timestamp must be within the last 2 weeks and "
                      f"no more than 2 hours in the future ({ts.isoformat()}).")


def check_period(period: int, name: str = "Period") -> None:
    if period < 1 or (period < 60 and period not in HIGH_RES_PERIODS) or (period >= 60 and period % 60):
        raise invalid(f"The parameter {name} must be 1, 5, 10, 30 or a multiple of 60.")


def check_range(start: datetime, end: datetime, period: int, limit: int = MAX_DATAPOINTS) -> None:
    if end <= start:
        raise invalid("The parameter StartTime must be less than the parameter EndTime.")
    wanted = math.ceil((end - start).total_seconds() / period)
    if wanted > limit:
        raise combination(f"You have requested up to {wanted} datapoints, which exceeds the limit of {limit}. "
                          "You may reduce the datapoints requested by increasing Period, or decreasing the "
                          "time range.")


# "CloudWatch rounds the specified time stamp as follows: Start time less than 15 days ago - Round
# down to the nearest whole minute. [...] between 15 and 63 days ago - [...] 5-minute clock interval.
# [...] greater than 63 days ago - [...] 1-hour clock interval. If you set Period to 5, 10, 20, or 30,
# the start time of your request is rounded down to the nearest time that corresponds to even 5-, 10-,
# 20-, or 30-second divisions of a minute." (GetMetricStatistics StartTime, API reference:
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html)
START_ROUNDING = ((timedelta(days=15), 60), (timedelta(days=63), 300))


def round_start(start: datetime, period: int, now: datetime) -> datetime:
    """StartTime rounded down as AWS documents it."""
    if period < 60:
        step = period
    else:
        step = next((s for horizon, s in START_ROUNDING if now - start < horizon), 3600)
    epoch = start.timestamp()
    return start - timedelta(seconds=epoch - epoch // step * step)


def period_retained(start: datetime, period: int, now: datetime) -> bool:
    """False when the data at StartTime is only kept at a coarser period (AWS then returns none)."""
    age = now - start
    for horizon, granularity in TIERS:
        if age <= horizon:
            return period % granularity == 0 or period == granularity
    return False
