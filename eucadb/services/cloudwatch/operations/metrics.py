"""PutMetricData, GetMetricStatistics, GetMetricData and ListMetrics."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable

from eucadb.errors import EucadbError
from eucadb.services.cloudwatch import datapoints, limits, queries, sketch, tiers, tokens
from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.errors import bad_token, combination, invalid, missing
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.stats import BASIC, basic, percentile, percentile_of

QUERY_ID_RE = queries.QUERY_ID_RE
DEFAULT_UNIT = "None"


Render = tuple[Callable[..., str], tuple]   # a datapoints renderer of a COPY line's tail, and its arguments


def _datum_row(namespace: str, datum: dict, where: str, now: datetime) -> tuple[SeriesKey, Render]:
    """Validate one MetricDatum; its key and how to render its COPY line after the series id (done
    while the COPY streams, once the catalogue has the ids).

    The common shapes (one Value, no Unit or a standard one) take the cheap branches; every refusal
    still goes through the `limits` helper that words it."""
    name = datum.get("MetricName")
    if limits.is_missing(name):
        limits.require(datum, "MetricName")
    if not 1 <= len(name) <= 255:
        limits.check_length(f"{where}.MetricName", name, 1, 255)
    dims = datum.get("Dimensions")
    if dims:
        limits.check_dimensions(dims, where)
    unit = datum.get("Unit")
    if unit is None:
        unit = DEFAULT_UNIT
    elif unit not in limits.UNITS:
        limits.check_unit(unit)
    ts = datum.get("Timestamp", now)
    limits.check_timestamp(ts, now)
    resolution = datum.get("StorageResolution", 60)
    if resolution not in (1, 60):
        raise invalid(f"The parameter {where}.StorageResolution must be 1 or 60.")
    has_value = "Value" in datum
    kinds = has_value + ("Values" in datum) + ("StatisticValues" in datum)
    if kinds > 1:
        given = [k for k in ("Value", "Values", "StatisticValues") if k in datum]
        # AWS's answer, e.g. "The parameters MetricData.member.4.Value and MetricData.member.4.StatisticValues
        # are mutually exclusive and you have specified both." (quoted in AdRoll/goamz issue 355)
        raise combination(f"The parameters {where}.{given[0]} and {where}.{given[1]} are mutually exclusive "
                          "and you have specified both.")
    if not kinds:
        raise combination(f"{where} must have exactly one of Value, Values or StatisticValues.")
    if has_value:
        v = datum["Value"]
        if not limits.value_ok(v):
            limits.check_value(f"{where}.Value", v)
        return SeriesKey.of(namespace, name, dims), (datapoints.value_tail, (ts, resolution, unit, v))
    columns = (_values_columns(datum, where) if "Values" in datum
               else _statistic_columns(datum["StatisticValues"], where))
    return SeriesKey.of(namespace, name, dims), (datapoints.row_tail, (ts, resolution, unit, *columns))


def _values_columns(datum: dict, where: str) -> tuple:
    """sample_count, sum, minimum, maximum, samples, sample_counts of a Values (+ Counts) datum."""
    values, counts = datum["Values"], datum.get("Counts")
    if not values:
        raise missing(f"{where}.Values")
    if len(values) > limits.MAX_VALUES:
        raise invalid(f"The collection {where}.Values must not have a size greater than {limits.MAX_VALUES}.")
    if counts is not None and len(counts) != len(values):
        raise combination(f"{where}.Counts must have as many members as {where}.Values.")
    given = counts
    counts = counts if counts is not None else [1.0] * len(values)
    for v in values:
        limits.check_value(f"{where}.Values", v)
    if any(c < 0 or c != c for c in counts) or sum(counts) <= 0:
        raise invalid(f"{where}.Counts must be non-negative with a positive total.")
    present = [v for v, c in zip(values, counts) if c > 0]
    if not math.isfinite(sum(counts)) or not math.isfinite(sum(v * c for v, c in zip(values, counts))):
        raise invalid(f"{where}: the Values weighted by Counts overflow.")
    return (float(sum(counts)), sum(v * c for v, c in zip(values, counts)), min(present), max(present), values,
            given)


def _statistic_columns(sv: dict, where: str) -> tuple:
    """sample_count, sum, minimum, maximum (no samples) of a StatisticValues datum."""
    limits.require(sv, "SampleCount", "Sum", "Minimum", "Maximum")
    for name in ("SampleCount", "Sum", "Minimum", "Maximum"):
        limits.check_value(f"{where}.StatisticValues.{name}", sv[name])
    if sv["SampleCount"] <= 0 or sv["Minimum"] > sv["Maximum"]:
        raise invalid(f"{where}.StatisticValues needs SampleCount > 0 and Minimum <= Maximum.")
    return sv["SampleCount"], sv["Sum"], sv["Minimum"], sv["Maximum"], None, None


def put_metric_data(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "Namespace", "MetricData")
    namespace = p["Namespace"]
    limits.check_length("Namespace", namespace, 1, 255)
    if namespace.startswith("AWS/"):
        raise invalid("The value AWS/ for parameter Namespace is invalid: it is reserved for AWS services.")
    data = p["MetricData"]
    if len(data) > limits.MAX_DATUMS:
        raise invalid(f"The collection MetricData must not have a size greater than {limits.MAX_DATUMS}.")
    now = cw.clock()
    parsed = [_datum_row(namespace, datum, f"MetricData.member.{i}", now) for i, datum in enumerate(data, 1)]
    ids = cw.catalogue.ids([k for k, _ in parsed])
    datapoints.copy_lines(cw.pools, (f"{sid}\t{render(*args)}" for sid, (_, (render, args)) in zip(ids, parsed)))
    return {}


def _stat_window(p: dict) -> tuple[datetime, datetime, int]:
    limits.require(p, "StartTime", "EndTime", "Period")
    limits.check_period(p["Period"])
    return p["StartTime"], p["EndTime"], p["Period"]


def series_statistics(cw: CloudWatch, key: SeriesKey, start: datetime, end: datetime, period: int,
                      unit: str | None, stats: list[str], extended: list[str], per_unit: bool = False) -> list[dict]:
    """Datapoints (AWS shape) of one series: basic statistics in SQL, percentiles from samples, read
    from the tier AWS would answer from (tiers.py; percentiles there come from sketches, sketch.py).

    `per_unit`: one datapoint per period and unit stored (GetMetricStatistics without Unit, as AWS
    answers it); otherwise the units of a period are merged into one datapoint."""
    sid = cw.catalogue.find(key)
    if sid is None or not limits.period_retained(start, period, cw.clock()):
        return []
    start = limits.round_start(start, period, cw.clock())
    tier = tiers.pick(start, period, cw.clock())
    buckets = tiers.aggregate(cw.pools, tier, sid, start, end, period, unit)
    pairs: dict[tuple[float, str], list[tuple[float, float]]] = {}
    if extended:
        pairs = tiers.samples(cw.pools, tier, sid, start, end, period, unit)
    if not per_unit:
        buckets = datapoints.merge_units(buckets)
        merged: dict[tuple[float, str], list[tuple[float, float]]] = {}
        for (b_start, _), values in pairs.items():
            merged.setdefault((b_start, ""), []).extend(values)
        pairs = merged
    out = []
    for b in buckets:
        point: dict[str, Any] = {"Timestamp": datetime.fromtimestamp(b.start, timezone.utc),
                                 "Unit": unit or b.unit}
        for stat in stats:
            point[stat] = basic(stat, b.sample_count, b.sum, b.minimum, b.maximum)
        mine = pairs.get((b.start, b.unit if per_unit else ""), ())
        values = {e: sketch.clamp(percentile(mine, percentile_of(e)), b.minimum, b.maximum) for e in extended}
        if any(v is not None for v in values.values()):
            point["ExtendedStatistics"] = {e: v for e, v in values.items() if v is not None}
        out.append(point)
    return out


def _metric_key(p: dict, where: str = "") -> SeriesKey:
    limits.require(p, "Namespace", "MetricName")
    limits.check_dimensions(p.get("Dimensions", []), where or "request")
    return SeriesKey.of(p["Namespace"], p["MetricName"], p.get("Dimensions"))


def get_metric_statistics(cw: CloudWatch, p: dict) -> dict:
    key = _metric_key(p)
    start, end, period = _stat_window(p)
    stats, extended = p.get("Statistics", []), p.get("ExtendedStatistics", [])
    if bool(stats) == bool(extended):
        raise combination("You must specify either Statistics or ExtendedStatistics, but not both.")
    if len(stats) > limits.MAX_STATISTICS or len(extended) > limits.MAX_EXTENDED:
        raise invalid("At most 5 Statistics and 10 ExtendedStatistics may be requested.")
    bad = [s for s in stats if s not in BASIC] + [e for e in extended if percentile_of(e) is None]
    if bad:
        raise invalid(f"Unsupported statistic(s): {', '.join(bad)} (basic statistics and pNN.NN only).")
    limits.check_unit(p.get("Unit"))
    limits.check_range(start, end, period)
    points = series_statistics(cw, key, start, end, period, p.get("Unit"), stats, extended, per_unit=True)
    return {"Label": key.metric_name, "Datapoints": points}


def get_metric_data(cw: CloudWatch, p: dict) -> dict:
    """MetricStat queries and metric math (queries.py, math/), paged as AWS does: at most
    MaxDatapoints values per call; a truncated result says PartialData and NextToken (result index
    and offset) resumes where it stopped. An expression can yield several results (an array of
    series) under one Id, so paging counts results, not queries."""
    limits.require(p, "MetricDataQueries", "StartTime", "EndTime")
    raw = p["MetricDataQueries"]
    if len(raw) > limits.MAX_QUERIES:
        raise invalid(f"The collection MetricDataQueries must not have a size greater than {limits.MAX_QUERIES}.")
    ids = [q.get("Id", "") for q in raw]
    if any(not QUERY_ID_RE.match(i) for i in ids) or len(set(ids)) != len(ids):
        raise invalid("Each query needs a unique Id starting with a lower-case letter ([a-zA-Z0-9_]).")
    start, end = p["StartTime"], p["EndTime"]
    if end <= start:
        raise invalid("The parameter StartTime must be less than the parameter EndTime.")
    descending = p.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    budget = p.get("MaxDatapoints", 100_800)
    if budget < 1:
        raise invalid("The parameter MaxDatapoints must be greater than 0.")
    parsed = [queries.parse_query(q, f"MetricDataQueries.member.{i}") for i, q in enumerate(raw, 1)]
    run = queries.engine(cw, parsed, start, end)
    computed = run.results()
    labels = queries.default_labels(parsed)
    first, offset = _gmd_position(p.get("NextToken"), max(len(computed), 1))
    results: list[dict] = []
    out: dict[str, Any] = {}
    for index in range(first, len(computed)):
        r = computed[index]
        points = sorted(r.points, reverse=descending)[offset if index == first else 0:]
        page, rest = points[:budget], points[budget:]
        budget -= len(page)
        result: dict[str, Any] = {"Id": r.id, "Label": labels.get(r.id, r.label),
                                  "Timestamps": [datetime.fromtimestamp(t, timezone.utc) for t, _ in page],
                                  "Values": [v for _, v in page], "StatusCode": "PartialData" if rest else "Complete"}
        if r.messages:
            result["Messages"] = r.messages
        results.append(result)
        if rest or (budget == 0 and index + 1 < len(computed)):
            done = len(page) + (offset if index == first else 0)
            nxt = (index, done) if rest else (index + 1, 0)
            out["NextToken"] = tokens.encode("gmd", f"{nxt[0]}.{nxt[1]}")
            break
    out["MetricDataResults"] = results
    out["Messages"] = list(run.messages)
    return out


def _gmd_position(token: str | None, n_queries: int) -> tuple[int, int]:
    value = tokens.decode("gmd", token)
    if value is None:
        return 0, 0
    index, _, offset = value.partition(".")
    return tokens.number(index, n_queries), tokens.number(offset, 2 ** 31)


def list_metrics(cw: CloudWatch, p: dict) -> dict:
    filters = p.get("Dimensions", [])
    if len(filters) > limits.MAX_DIMENSIONS:
        raise invalid(f"The collection Dimensions must not have a size greater than {limits.MAX_DIMENSIONS}.")
    for f in filters:
        limits.require(f, "Name")
    keys, last = cw.catalogue.list(p.get("Namespace"), p.get("MetricName"), filters,
                                   _series_position(cw, p.get("NextToken")))
    out: dict[str, Any] = {"Metrics": [k.as_metric() for k in keys]}
    if last is not None:
        out["NextToken"] = tokens.encode("series", cw.keys.box.seal(str(last), _token_purpose(cw)))
    return out


# ListMetrics pages by series id, and ids are counted across accounts: a plain id in the token would
# tell one account how many series the others create. The id travels sealed to the caller's account.
def _token_purpose(cw: CloudWatch) -> str:
    return f"cloudwatch-list-metrics:{cw.account}"


def _series_position(cw: CloudWatch, token: str | None) -> int:
    sealed = tokens.decode("series", token)
    if sealed is None:
        return 0
    try:
        value = cw.keys.box.open(sealed, _token_purpose(cw))
    except (EucadbError, ValueError):   # not sealed here, or for another account
        raise bad_token() from None
    return tokens.number(value, 2 ** 62)
