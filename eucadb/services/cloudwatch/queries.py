"""MetricDataQuery lists (GetMetricData, metric-math alarms) checked and run through the math engine.

The handler side of eucadb/services/cloudwatch/math: turns wire queries into engine Queries and gives
the engine its data sources — one MetricStat's datapoints, the catalogue, per-period aggregates —
all read through the service's own statistics path, so math sees exactly what MetricStat answers.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Iterable, Iterator

from eucadb.services.cloudwatch import anomaly, limits
from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.errors import ApiError, invalid
from eucadb.services.cloudwatch.math.evaluate import Engine, Metric, Query, Sources
from eucadb.services.cloudwatch.math.series import Window
from eucadb.services.cloudwatch.stats import BASIC, percentile_of

QUERY_ID_RE = re.compile(r"^[a-z][a-zA-Z0-9_]{0,254}$")
MAX_EXPRESSION = 2048   # MetricDataQuery.Expression max length (botocore model)


def _metric_key(p: dict, where: str) -> SeriesKey:
    limits.require(p, "Namespace", "MetricName")
    limits.check_dimensions(p.get("Dimensions", []), where)
    return SeriesKey.of(p["Namespace"], p["MetricName"], p.get("Dimensions"))


def parse_query(q: dict, member: str) -> Query:
    """One MetricDataQuery: exactly one of MetricStat or Expression ("Within each MetricDataQuery
    object, you must specify either Expression or MetricStat but not both", model documentation)."""
    qid = q["Id"]
    if ("Expression" in q) == ("MetricStat" in q):
        raise ApiError("ValidationError", f"The parameter {member} must contain either an Expression or a "
                                          f"MetricStat, but not both (query {qid}).")
    period = q.get("Period")
    if period is not None:
        limits.check_period(period, f"{member}.Period")
    label = q.get("Label")
    return_data = q.get("ReturnData", True)
    if "Expression" in q:
        expression = q["Expression"]
        if not 1 <= len(expression) <= MAX_EXPRESSION:
            raise ApiError("ValidationError", f"The parameter {member}.Expression must be between 1 and "
                                              f"{MAX_EXPRESSION} characters long.")
        return Query(qid, expression=expression, label=label, return_data=return_data, period=period)
    ms = q["MetricStat"]
    limits.require(ms, "Metric", "Period", "Stat")
    key = _metric_key(ms["Metric"], qid)
    limits.check_period(ms["Period"], f"{member}.MetricStat.Period")
    stat = ms["Stat"]
    if stat not in BASIC and percentile_of(stat) is None:
        raise invalid(f"The value {stat} for parameter {member}.MetricStat.Stat is not a valid statistic.")
    limits.check_unit(ms.get("Unit"))
    return Query(qid, metric=Metric(key, stat, ms["Period"], ms.get("Unit")), label=label, return_data=return_data)


def catalogue_of(cw) -> Callable[[str | None], Iterator[SeriesKey]]:
    """Every series of the catalogue, page by page (SEARCH and Metrics Insights scan it); narrowed
    to one namespace when given. The tenancy change passes the account here."""
    def keys(namespace: str | None) -> Iterator[SeriesKey]:
        after = 0
        while True:
            page, last = cw.catalogue.list(namespace, None, [], after)
            yield from page
            if last is None:
                return
            after = last
    return keys


def sources(cw, start: datetime, end: datetime, catalogue: Callable[[str | None], Iterable[SeriesKey]] | None = None) -> Sources:
    from eucadb.services.cloudwatch.operations.metrics import series_statistics

    def series(m: Metric, start: datetime, end: datetime) -> dict[int, float]:
        is_pct = m.stat not in BASIC
        points = series_statistics(cw, m.key, start, end, m.period, m.unit,
                                   [] if is_pct else [m.stat], [m.stat] if is_pct else [])
        out = {}
        for p in points:
            v = p.get("ExtendedStatistics", {}).get(m.stat) if is_pct else p[m.stat]
            if v is not None:
                out[int(p["Timestamp"].timestamp())] = v
        return out

    def buckets(key: SeriesKey, period: int) -> list[tuple[int, float, float, float, float]]:
        points = series_statistics(cw, key, start, end, period, None, ["SampleCount", "Sum", "Minimum", "Maximum"], [])
        return [(int(p["Timestamp"].timestamp()), p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"]) for p in points]

    def band(m: Metric, grid: list[int], k: float) -> tuple[dict[int, float], dict[int, float]]:
        detector = anomaly.find(cw, m.key, m.stat)
        if detector is None:   # made on first use, as AWS does for a band (anomaly.py)
            detector = anomaly.Detector(m.key, m.stat)
            anomaly.record(cw, detector, "put")
        t_start, t_end = anomaly.training_range(int(start.timestamp()))
        training = series(m, t_start, t_end)
        return anomaly.band(detector, training, grid, k)

    return Sources(series=lambda m: series(m, start, end), catalogue=catalogue or catalogue_of(cw),
                   buckets=buckets, band=band)


def engine(cw, queries: list[Query], start: datetime, end: datetime) -> Engine:
    """Checks every expression (a ValidationError before anything is read) and returns the engine."""
    return Engine(queries, Window(int(start.timestamp()), int(end.timestamp())), sources(cw, start, end))


def default_labels(parsed: list[Query]) -> dict[str, str]:
    """The Label AWS gives a MetricStat query that has none: the metric name, then the Stat when
    the request's MetricStat queries differ in Stat, then the Period when they differ in Period
    ("metric1 Sum 60" / "metric1 Minimum 30"; "metric1 Sum" / "metric1 Minimum" for one period;
    "metric1 60" / "metric1 30" for one stat; units alone add nothing). Source: responses recorded
    against AWS in localstack/localstack tests/aws/services/cloudwatch/test_cloudwatch.snapshot.json
    (test_label_generation, test_get_metric_data_with_zero_and_labels)."""
    stats = [q.metric for q in parsed if q.metric is not None]
    by_stat = len({m.stat for m in stats}) > 1
    by_period = len({m.period for m in stats}) > 1
    return {q.id: " ".join([q.metric.key.metric_name] + ([q.metric.stat] if by_stat else [])
                           + ([str(q.metric.period)] if by_period else []))
            for q in parsed if q.metric is not None and q.label is None}
