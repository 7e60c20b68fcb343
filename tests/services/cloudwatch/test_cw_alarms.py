"""Alarm rules (pure) and the once-a-minute evaluation against stored datapoints and the history."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eucadb.services.cloudwatch.evaluation import decide, evaluate_all


@pytest.mark.parametrize("values,treat,to_alarm,current,want", [
    ([5.0, 6.0], "missing", 2, "OK", "ALARM"),
    ([5.0, 1.0], "missing", 2, "OK", "OK"),
    ([5.0, 1.0], "missing", 1, "OK", "ALARM"),
    ([None, None], "missing", 2, "OK", "INSUFFICIENT_DATA"),
    ([None, None], "breaching", 2, "OK", "ALARM"),
    ([None, None], "notBreaching", 2, "ALARM", "OK"),
    ([None, None], "ignore", 2, "ALARM", "ALARM"),
    ([None, 5.0], "breaching", 2, "OK", "ALARM"),
    ([None, 5.0], "missing", 2, "OK", "OK"),
])
def test_decide(values, treat, to_alarm, current, want):
    state, reason = decide(values, "GreaterThanThreshold", 3.0, to_alarm, treat, current)
    assert state == want and reason


def test_evaluation_changes_state_and_records_history(endpoint):
    cw = endpoint.client()
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    end = clock.replace(second=0)
    dims = [{"Name": "Host", "Value": "e1"}]
    cw.put_metric_data(Namespace="Eval", MetricData=[
        {"MetricName": "cpu", "Dimensions": dims, "Value": 90.0, "Timestamp": end - timedelta(seconds=30)},
        {"MetricName": "cpu", "Dimensions": dims, "Value": 95.0, "Timestamp": end - timedelta(seconds=90)}])
    for name, threshold in (("hot", 80.0), ("cool", 99.0), ("nodata", 1.0)):
        cw.put_metric_alarm(AlarmName=name, Namespace="Eval", MetricName="cpu" if name != "nodata" else "none",
                            Dimensions=dims, Statistic="Maximum", Period=60, EvaluationPeriods=2, Threshold=threshold,
                            ComparisonOperator="GreaterThanThreshold")
    real = endpoint.service.clock
    endpoint.service.clock = lambda: clock
    try:
        assert evaluate_all(endpoint.service) >= 3
    finally:
        endpoint.service.clock = real
    states = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=["hot", "cool", "nodata"])["MetricAlarms"]}
    assert (states["hot"], states["cool"], states["nodata"]) == ("ALARM", "OK", "INSUFFICIENT_DATA")
    history = cw.describe_alarm_history(AlarmName="hot", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert history[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert cw.describe_alarm_history(AlarmName="nodata", HistoryItemType="StateUpdate")["AlarmHistoryItems"] == []
    endpoint.enabled["value"] = False
    try:
        assert evaluate_all(endpoint.service) == 0
    finally:
        endpoint.enabled["value"] = True


def test_describe_alarms_pages(endpoint):
    cw = endpoint.client("smithy-rpc-v2-cbor")
    for i in range(7):
        cw.put_metric_alarm(AlarmName=f"page-{i}", Namespace="P", MetricName="m", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold")
    names, token = [], None
    while True:
        out = cw.describe_alarms(AlarmNamePrefix="page-", MaxRecords=3, **({"NextToken": token} if token else {}))
        names += [a["AlarmName"] for a in out["MetricAlarms"]]
        token = out.get("NextToken")
        if not token:
            break
    assert names == [f"page-{i}" for i in range(7)]
    with pytest.raises(cw.exceptions.ClientError) as err:
        cw.put_metric_alarm(AlarmName="math", Metrics=[{"Id": "m1", "Expression": "SUM(METRICS())"}],
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
