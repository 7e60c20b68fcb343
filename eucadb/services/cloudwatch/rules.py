"""AWS's alarm evaluation rules as pure functions: values in, state out (no clock, no database).

The source of every rule is the CloudWatch User Guide, "Using Amazon CloudWatch alarms" →
"Configuring how CloudWatch alarms treat missing data" / "How alarm state is evaluated when data is
missing" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html),
and for percentiles "Percentile-based alarms and low data samples" on the same page:

- CloudWatch looks at an *evaluation range* longer than EvaluationPeriods (N). The guide's tables use
  5 datapoints for N = 3 and say the exact number depends on the period; eucadb uses N + 2.
- At least N real datapoints in the range: the newest N real ones decide, TreatMissingData is not used.
- Fewer: missing datapoints are filled in as few times as possible (N − real of them) with the
  TreatMissingData choice; every real datapoint of the range takes part.
- ALARM when at least DatapointsToAlarm (M) of the N evaluated datapoints breach, else OK — except
  that `missing` and `ignore` cannot say OK or ALARM when the real datapoints are all breaching but
  fewer than M: `missing` is then INSUFFICIENT_DATA and `ignore` keeps the current state; both give
  INSUFFICIENT_DATA / current state when the whole range is missing. The tables' one exception (its
  sixth row, "X - - - -"): with `missing`, a breaching datapoint that is the oldest of the range and
  no non-breaching one is ALARM ("because the oldest evaluated data point is breaching and there
  aren't any non-breaching data points").
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Sequence

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")
LOW_SAMPLE = ("evaluate", "ignore")
EXTRA_RANGE = 2   # evaluation range = EvaluationPeriods + this many periods (the guide's 5 for 3)

# Static-threshold operators; the anomaly-band ones need a band (ThresholdMetricId), which only
# metric-math alarms have: PutMetricAlarm refuses them without it, with AWS's message.
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge, "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}
BAND_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold",
                  "GreaterThanUpperThreshold")
BAND_NEEDS_METRIC = "ComparisonOperators for ranges require ThresholdMetricId to be set"


@dataclass(frozen=True)
class Point:
    """One period's value of the alarm's statistic and how many samples it came from."""

    value: float
    samples: float = 1.0


@dataclass(frozen=True)
class Rule:
    """The parts of an alarm definition evaluation needs."""

    compare: str
    threshold: float
    periods: int                       # EvaluationPeriods, N
    to_alarm: int                      # DatapointsToAlarm, M
    treat_missing: str = "missing"
    percentile: float | None = None    # 99.5 for p99.5 (ExtendedStatistic)
    low_sample: str = "evaluate"       # EvaluateLowSampleCountPercentile


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str
    evaluated: tuple[float | None, ...] = ()   # the N datapoints that decided, None = filled in


def range_length(periods: int) -> int:
    return periods + EXTRA_RANGE


def min_samples(percentile: float) -> float:
    """Samples below which a percentile is "low sample" (guide: 10/(1-p) for p in [0.5, 1), 10/p
    for p in (0, 0.5)). p0 and p100 are Minimum and Maximum, exact at any count: no threshold."""
    p = percentile / 100.0
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return 10.0 / (1.0 - p) if p >= 0.5 else 10.0 / p


def _verdict(rule: Rule, breaching: int) -> str:
    return "ALARM" if breaching >= rule.to_alarm else "OK"


def decide(rule: Rule, window: Sequence[Point | None], current: str) -> Outcome:
    """The new state from the evaluation range, oldest first (None = no datapoint in that period)."""
    if rule.percentile is not None and rule.low_sample == "ignore":
        need = min_samples(rule.percentile)
        if any(p is not None and p.samples < need for p in window):
            return Outcome(current, f"Low sample count for {rule.percentile:g}th percentile: state kept "
                                    f"(EvaluateLowSampleCountPercentile=ignore, {need:g} samples needed)")
    real = [p.value for p in window if p is not None]
    hits = [COMPARE[rule.compare](v, rule.threshold) for v in real]
    n = rule.periods
    if len(real) >= n:
        evaluated = tuple(real[-n:])
        return _outcome(rule, _verdict(rule, sum(hits[-n:])), evaluated)
    fills = n - len(real)
    evaluated = tuple(real) + (None,) * fills
    if rule.treat_missing == "breaching":
        return _outcome(rule, _verdict(rule, sum(hits) + fills), evaluated)
    if rule.treat_missing == "notBreaching":
        return _outcome(rule, _verdict(rule, sum(hits)), evaluated)
    # missing / ignore: missing datapoints are neither; decide only what the real ones decide
    if real and sum(hits) >= rule.to_alarm:
        return _outcome(rule, "ALARM", evaluated)
    if real and not all(hits):
        return _outcome(rule, "OK", evaluated)
    if rule.treat_missing == "missing" and real and window[0] is not None:   # the guide's sixth row
        return _outcome(rule, "ALARM", evaluated)
    if rule.treat_missing == "ignore":
        return Outcome(current, "Missing data ignored: state kept (TreatMissingData=ignore)", evaluated)
    what = "no datapoints" if not real else f"{len(real)} of {n} datapoints"
    return Outcome("INSUFFICIENT_DATA", f"Insufficient Data: {what} were received in the evaluation range.",
                   evaluated)


def _outcome(rule: Rule, state: str, evaluated: tuple[float | None, ...]) -> Outcome:
    """AWS's reason wording: "Threshold Crossed: 1 out of the last 1 datapoints [90.0 (02/12/26
    04:00:00)] was greater than the threshold (80.0) (minimum 1 datapoint for OK -> ALARM transition)."
    — without the timestamps, which the caller adds to StateReasonData."""
    breaching = [v for v in evaluated if v is not None and COMPARE[rule.compare](v, rule.threshold)]
    shown = ", ".join("missing" if v is None else repr(v) for v in evaluated)
    relation = OPERATOR_WORDS[rule.compare]
    count = len(breaching) if state == "ALARM" else len(evaluated) - len(breaching)
    verb = relation if state == "ALARM" else f"not {relation}"
    return Outcome(state, f"Threshold Crossed: {count} out of the last {len(evaluated)} datapoints [{shown}] "
                          f"{'was' if count == 1 else 'were'} {verb} the threshold ({rule.threshold!r}) "
                          f"(minimum {rule.to_alarm} datapoint{'s' if rule.to_alarm != 1 else ''} "
                          f"for ALARM).", evaluated)


OPERATOR_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}
