"""AWS's alarm evaluation rules (rules.decide, pure) against the tables AWS publishes.

Source of every expected state, unless a case says otherwise: CloudWatch User Guide, "Configuring how
CloudWatch alarms treat missing data" → "How alarm state is evaluated when data is missing"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-evaluating-missing-data).
In the tables "0" is a non-breaching datapoint, "X" a breaching one and "-" a missing one, oldest
first, over the 5-datapoint evaluation range of an alarm with EvaluationPeriods 3.
"""
from __future__ import annotations

import pytest

from eucadb.services.cloudwatch.rules import Point, Rule, decide, min_samples, range_length

DOC = "AlarmThatSendsEmail.html#alarms-evaluating-missing-data"
TREATS = ("missing", "ignore", "breaching", "notBreaching")
KEEP = "keep"   # "Retain current state"


def window(text: str) -> list[Point | None]:
    """"0 - X" → datapoints below (1.0), missing, above (5.0) a threshold of 3 (GreaterThanThreshold)."""
    return [None if c == "-" else Point(5.0 if c == "X" else 1.0) for c in text.split()]


# (datapoints, MISSING, IGNORE, BREACHING, NOT BREACHING): the first table, Datapoints to Alarm 3 of 3
THREE_OF_THREE = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", "OK", "OK", "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - - - X", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("X - - - -", "ALARM", KEEP, "ALARM", "OK"),
]
# the second table, Datapoints to Alarm 2 of 3 (an M out of N alarm)
TWO_OF_THREE = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", "OK", "OK", "ALARM", "OK"),
    ("- - - - X", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
]
CASES = [(m, row[0], treat, want) for m, table in ((3, THREE_OF_THREE), (2, TWO_OF_THREE))
         for row in table for treat, want in zip(TREATS, row[1:])]


@pytest.mark.parametrize("to_alarm,points,treat,want", CASES,
                         ids=[f"{m}of3 [{p}] {t}" for m, p, t, _ in CASES])
@pytest.mark.parametrize("current", ["OK", "ALARM", "INSUFFICIENT_DATA"])
def test_the_guides_missing_data_tables(to_alarm, points, treat, want, current):
    rule = Rule("GreaterThanThreshold", 3.0, periods=3, to_alarm=to_alarm, treat_missing=treat)
    outcome = decide(rule, window(points), current)
    assert outcome.state == (current if want == KEEP else want), f"{DOC}: {points} {treat}"
    assert outcome.reason


def test_the_evaluation_range_is_the_guides_five_for_three_periods():
    assert range_length(3) == 5   # "CloudWatch retrieves the 5 most recent data points" (same page)


@pytest.mark.parametrize("compare,value,breaches", [
    ("GreaterThanThreshold", 3.0, False), ("GreaterThanThreshold", 3.5, True),
    ("GreaterThanOrEqualToThreshold", 3.0, True), ("GreaterThanOrEqualToThreshold", 2.9, False),
    ("LessThanThreshold", 3.0, False), ("LessThanThreshold", 2.0, True),
    ("LessThanOrEqualToThreshold", 3.0, True), ("LessThanOrEqualToThreshold", 3.1, False),
])
def test_comparison_operators(compare, value, breaches):
    """PutMetricAlarm ComparisonOperator: "The specified Statistic value is used as the first operand"."""
    rule = Rule(compare, 3.0, periods=1, to_alarm=1)
    assert decide(rule, [Point(value)], "INSUFFICIENT_DATA").state == ("ALARM" if breaches else "OK")


def test_the_newest_real_datapoints_decide_when_there_are_enough():
    """"If some data points in the evaluation range are missing, but the number of existing data points
    retrieved is equal to or more than the alarm's Evaluation Periods, CloudWatch evaluates the alarm
    state based on the most recent existing data points" (same page)."""
    rule = Rule("GreaterThanThreshold", 3.0, periods=2, to_alarm=2, treat_missing="breaching")
    outcome = decide(rule, window("X - 0 - 0 X"), "OK")
    assert outcome.state == "OK" and outcome.evaluated == (1.0, 5.0)


@pytest.mark.parametrize("percentile,need", [(99.0, 1000.0), (50.0, 20.0), (90.0, 100.0), (10.0, 100.0),
                                             (100.0, 0.0), (0.0, 0.0)])
def test_low_sample_thresholds(percentile, need):
    """"For percentiles between 0.5 and 1.00, this setting is used when there are fewer than
    10/(1-percentile) data points ... fewer than 1000 samples for an alarm on a p99 percentile. For
    percentiles between 0 and 0.5, ... fewer than 10/percentile" (AlarmThatSendsEmail.html,
    "Percentile-based alarms and low data samples"). p0/p100 are Minimum/Maximum: no threshold."""
    assert min_samples(percentile) == pytest.approx(need)


@pytest.mark.parametrize("low_sample,samples,want", [
    ("ignore", 999, "OK"),       # too few for p99: "the alarm state does not change" (model doc)
    ("ignore", 1000, "ALARM"),
    ("evaluate", 5, "ALARM"),    # "the alarm is always evaluated ... no matter how many data points"
])
def test_evaluate_low_sample_count_percentile(low_sample, samples, want):
    rule = Rule("GreaterThanThreshold", 3.0, periods=1, to_alarm=1, percentile=99.0, low_sample=low_sample)
    assert decide(rule, [Point(5.0, samples)], "OK").state == want
