"""Answers compared with responses recorded against AWS itself: GetMetricData's default labels and
SetAlarmState's refusals, through real boto3 clients in all three wire protocols.

Source of every expectation: localstack/localstack tests/aws/services/cloudwatch/
test_cloudwatch.snapshot.json, responses recorded against AWS (2023-12) — cases named beside each."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from cwharness import PROTOCOLS


def _stat(qid: str, metric: str, stat: str, period: int, **extra) -> dict:
    return {"Id": qid, **extra, "MetricStat": {"Metric": {"Namespace": "Labels", "MetricName": metric},
                                               "Stat": stat, "Period": period}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("queries, labels", [
    # test_label_generation[input_pairs0]: stat and period differ → "metric1 Sum 60", "metric1 Minimum 30"
    ([("Sum", 60), ("Minimum", 30)], ["m Sum 60", "m Minimum 30"]),
    # [input_pairs1]: only the stat differs
    ([("Sum", 60), ("Minimum", 60)], ["m Sum", "m Minimum"]),
    # [input_pairs2]: only the period differs
    ([("Sum", 60), ("Sum", 30)], ["m 60", "m 30"]),
    # test_get_metric_data_stats / _for_multiple_metrics: one stat and period → the metric name
    ([("Sum", 60)], ["m"]),
])
def test_get_metric_data_default_labels(endpoint, protocol, queries, labels):
    cw = endpoint.client(protocol)
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    out = cw.get_metric_data(StartTime=end - timedelta(minutes=10), EndTime=end, MetricDataQueries=[
        _stat(f"q{i}", "m", stat, period) for i, (stat, period) in enumerate(queries)])
    assert [r["Label"] for r in out["MetricDataResults"]] == labels


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_given_label_is_kept_and_expressions_keep_theirs(endpoint, protocol):
    cw = endpoint.client(protocol)
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    out = cw.get_metric_data(StartTime=end - timedelta(minutes=10), EndTime=end, MetricDataQueries=[
        _stat("a", "m", "Sum", 60, Label="mine"), _stat("b", "m", "Average", 60),
        {"Id": "e", "Expression": "a * 2", "Label": "double"}])
    assert [r["Label"] for r in out["MetricDataResults"]] == ["mine", "m Average", "double"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_alarm_state_refusals(endpoint, protocol):
    cw = endpoint.client(protocol)
    # test_set_alarm_invalid_input "error-invalid-state": ValidationError 400 with this message
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName="nope", StateValue="INVALID", StateReason="x")
    r = e.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationError", 400)
    assert r["Error"]["Message"] == ("1 validation error detected: Value 'INVALID' at 'stateValue' failed to "
                                     "satisfy constraint: Member must satisfy enum value set: "
                                     "[INSUFFICIENT_DATA, ALARM, OK]")
    # "error-resource-not-found": ResourceNotFound, 404
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
    r = e.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("ResourceNotFound", 404)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("datum, first, second", [
    ({"Value": 1.0, "StatisticValues": {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0}},
     "Value", "StatisticValues"),
    ({"Value": 1.0, "Values": [1.0]}, "Value", "Values"),
    ({"Values": [1.0], "StatisticValues": {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0}},
     "Values", "StatisticValues"),
])
def test_put_metric_data_refuses_two_kinds_of_value(endpoint, protocol, datum, first, second):
    """AWS: InvalidParameterCombination, "The parameters MetricData.member.4.Value and
    MetricData.member.4.StatisticValues are mutually exclusive and you have specified both."
    (AWS's answer quoted in AdRoll/goamz issue 355; the model's MetricDatum documentation lists
    the three as alternatives). Nothing of the request is stored."""
    cw = endpoint.client(protocol)
    ns = f"Exclusive/{protocol}/{first}{second}"
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "ok", "Value": 1.0},
                                                     {"MetricName": "m", **datum}])
    r = e.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidParameterCombination", 400)
    assert r["Error"]["Message"] == (f"The parameters MetricData.member.2.{first} and MetricData.member.2.{second} "
                                     "are mutually exclusive and you have specified both.")
    assert cw.list_metrics(Namespace=ns)["Metrics"] == []
