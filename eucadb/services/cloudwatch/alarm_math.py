"""Alarms on metric math: PutMetricAlarm's `Metrics` (+ `ThresholdMetricId`) checked, and the
values the evaluator compares computed by the math engine.

Rules from the PutMetricAlarm model documentation: up to 20 MetricDataQuery structures, at most 10
with MetricStat and 10 with Expression; "One item in the Metrics array is the math expression that
the alarm watches. This expression by designated by having ReturnData set to true"; with
ThresholdMetricId (a band alarm) the watched metric and the band both return data, the threshold
is the band and ComparisonOperator is one of the three band operators. SEARCH is refused: "You
can't create an alarm based on a SEARCH expression" (using-metric-math.html).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eucadb.services.cloudwatch import queries
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.math.errors import validation
from eucadb.services.cloudwatch.math.evaluate import Engine, Query, Sources
from eucadb.services.cloudwatch.math.insights import Insights
from eucadb.services.cloudwatch.math.nodes import calls
from eucadb.services.cloudwatch.math.series import Series, Window, finite
from eucadb.services.cloudwatch.rules import BAND_OPERATORS

MAX_QUERIES, MAX_PER_KIND = 20, 10
SINGLE_METRIC_FIELDS = ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit")



def _parsed(metrics: list[dict]) -> list[Query]:
    return [queries.parse_query(q, f"Metrics.member.{i}") for i, q in enumerate(metrics, 1)]


def period_of(parsed: list[Query]) -> int:
    """The alarm's period: the longest of its metrics' (or an expression's own Period)."""
    return max([q.metric.period for q in parsed if q.metric] + [q.period for q in parsed if q.period] or [60])


def validate(p: dict, compare_operators: tuple[str, ...]) -> None:
    """Refuse a Metrics list AWS would refuse (ValidationError / InvalidParameterCombination)."""
    given = [f for f in SINGLE_METRIC_FIELDS if p.get(f) not in (None, [])]
    if given:
        raise ApiError("InvalidParameterCombination", f"The parameters Metrics and {', '.join(given)} cannot be "
                                                      "specified together.")
    metrics = p["Metrics"]
    if not 1 <= len(metrics) <= MAX_QUERIES:
        raise validation(f"The collection Metrics must have between 1 and {MAX_QUERIES} members.")
    ids = [q.get("Id", "") for q in metrics]
    if any(not queries.QUERY_ID_RE.match(i) for i in ids) or len(set(ids)) != len(ids):
        raise validation("Each query in Metrics needs a unique Id starting with a lower-case letter ([a-zA-Z0-9_]).")
    parsed = _parsed(metrics)
    if sum(1 for q in parsed if q.metric) > MAX_PER_KIND or sum(1 for q in parsed if q.expression) > MAX_PER_KIND:
        raise validation(f"The Metrics list can hold at most {MAX_PER_KIND} MetricStat and {MAX_PER_KIND} "
                         "Expression members.")
    band = p.get("ThresholdMetricId")
    returning = [q.id for q in parsed if q.return_data]
    if band is None:
        if len(returning) != 1:
            raise validation("Exactly one element of the metrics list should return data.")
        if p.get("Threshold") is None:
            raise ApiError("MissingParameter", "The parameter Threshold is required.")
        if p["ComparisonOperator"] not in compare_operators:
            raise ApiError("InvalidParameterValue", f"ComparisonOperator must be one of {', '.join(compare_operators)}.")
    else:
        if band not in ids:
            raise validation(f"ThresholdMetricId {band} does not match any Id in the Metrics list.")
        if len(returning) != 2 or band not in returning:
            raise validation("Exactly two elements of the metrics list should return data.")
        if p.get("Threshold") is not None:
            raise ApiError("InvalidParameterCombination", "Threshold and ThresholdMetricId cannot be specified together.")
        if p["ComparisonOperator"] not in BAND_OPERATORS:
            raise ApiError("InvalidParameterValue", f"With ThresholdMetricId, ComparisonOperator must be one of "
                                                    f"{', '.join(BAND_OPERATORS)}.")
    # A dry run on no data: static checks, then the types (the watched query must be one series).
    engine = Engine(parsed, Window(0, 60), Sources(lambda m: {}, lambda ns: (), lambda k, pd: []))
    for q in parsed:
        tree = engine.trees.get(q.id)
        if q.expression and not isinstance(tree, Insights) and any(c.name == "SEARCH" for c in calls(tree)):
            raise validation(f"Error in expression {q.id}: An alarm cannot watch a SEARCH expression.")
    watched = next(qid for qid in returning if qid != band)
    if not isinstance(engine.value(watched), Series):
        raise validation(f"Error in expression {watched}: The expression an alarm watches must return a single "
                         "time series.")
    if p["EvaluationPeriods"] * period_of(parsed) > 7 * 86400:
        raise ApiError("InvalidParameterValue", "EvaluationPeriods x Period must not exceed 7 days.")


def _series(value, qid: str) -> Series:
    if not isinstance(value, Series):
        raise ValueError(f"the alarm's query {qid} does not give a single time series")
    return value


def inputs(cw, d: dict, now: datetime) -> tuple[list[float | None], dict]:
    """The newest EvaluationPeriods values of the watched query (None: no datapoint), and the
    definition to decide with. For a band alarm each value is 1.0 when it lies outside the band on
    the side ComparisonOperator names and 0.0 inside, compared GreaterThanThreshold 0.5.

    The window reaches EvaluationPeriods periods further back, so that RATE, DIFF and FILL see the
    datapoint before the first evaluated one (AWS too "attempts to retrieve a higher number of data
    points than the number specified as Evaluation Periods")."""
    parsed = _parsed(d["Metrics"])
    period, n = period_of(parsed), d["EvaluationPeriods"]
    end = datetime.fromtimestamp(int(now.timestamp()) // period * period, timezone.utc)
    start = end - timedelta(seconds=period * n * 2)
    try:
        engine = queries.engine(cw, parsed, start, end)
        return _inputs(engine, d, end, period, n)
    except ApiError as exc:   # a stored definition the engine refuses: the evaluator skips this alarm
        raise ValueError(exc.message) from None


def _inputs(engine: Engine, d: dict, end: datetime, period: int, n: int) -> tuple[list[float | None], dict]:
    parsed = list(engine.queries.values())
    band = d.get("ThresholdMetricId")
    watched = next(q.id for q in parsed if q.return_data and q.id != band)
    points = {t: v for t, v in _series(engine.value(watched), watched).points.items() if finite(v)}
    stamps = [int((end - timedelta(seconds=period * (n - i))).timestamp()) for i in range(n)]
    values = [points.get(t) for t in stamps]
    if band is None:
        return values, d
    bounds = engine.value(band)
    upper, lower = (bounds[0], bounds[-1]) if isinstance(bounds, list) and bounds else (_series(bounds, band),) * 2
    side = d["ComparisonOperator"]
    flags: list[float | None] = []
    for t, v in zip(stamps, values):
        hi, lo = upper.points.get(t), lower.points.get(t)
        if v is None or hi is None or lo is None:
            flags.append(None)
            continue
        above, below = v > hi, v < lo
        breach = {"GreaterThanUpperThreshold": above, "LessThanLowerThreshold": below}.get(side, above or below)
        flags.append(1.0 if breach else 0.0)
    return flags, {**d, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0.5}
