"""The once-a-minute (rules: test_cw_rules.py) evaluation against stored datapoints and the history."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete

from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.cloudwatch.tables import Alarm


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
        assert evaluate_all(endpoint.service).evaluated >= 3
    finally:
        endpoint.service.clock = real
    states = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=["hot", "cool", "nodata"])["MetricAlarms"]}
    assert (states["hot"], states["cool"], states["nodata"]) == ("ALARM", "OK", "INSUFFICIENT_DATA")
    history = cw.describe_alarm_history(AlarmName="hot", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert history[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert cw.describe_alarm_history(AlarmName="nodata", HistoryItemType="StateUpdate")["AlarmHistoryItems"] == []
    endpoint.enabled["value"] = False
    try:
        assert evaluate_all(endpoint.service).evaluated == 0
    finally:
        endpoint.enabled["value"] = True


def _definition(name: str, **changes) -> str:
    d = {"AlarmName": name, "Namespace": "Broken", "MetricName": "cpu", "Dimensions": [{"Name": "Host", "Value": "b1"}],
         "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 80.0,
         "ComparisonOperator": "GreaterThanThreshold", **changes}
    return json.dumps({k: v for k, v in d.items() if v is not None})


# stored definitions an evaluation cannot use (a store written by hand or by another version):
# PutMetricAlarm refuses each of them, so they are written straight into the local table
BROKEN = {
    "broken-json": "{not json",
    "broken-period": _definition("broken-period", Period=0),
    "broken-statistic": _definition("broken-statistic", Statistic="Median"),
    "broken-threshold": _definition("broken-threshold", Threshold=None),
    "broken-band": _definition("broken-band", ComparisonOperator="GreaterThanUpperThreshold"),   # needs a band
}


def test_a_broken_alarm_does_not_stop_the_evaluation_of_the_others(endpoint, monkeypatch, caplog):
    cw = endpoint.client()
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    cw.put_metric_data(Namespace="Broken", MetricData=[
        {"MetricName": "cpu", "Dimensions": [{"Name": "Host", "Value": "b1"}], "Value": 90.0,
         "Timestamp": clock.replace(second=0) - timedelta(seconds=30)}])
    with endpoint.service.pools.session(LOCAL) as s:   # first in the table, so evaluated first
        s.add_all(Alarm(account=endpoint.account, name=name, definition=definition, state="INSUFFICIENT_DATA",
                        state_reason="stored")
                  for name, definition in BROKEN.items())
    for name, threshold in (("after-broken-hot", 80.0), ("after-broken-cool", 99.0)):
        cw.put_metric_alarm(**json.loads(_definition(name, Threshold=threshold)))
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock)
    try:
        with caplog.at_level(logging.WARNING, logger="eucadb.services.cloudwatch.evaluation"):
            result = evaluate_all(endpoint.service)
            again = evaluate_all(endpoint.service)   # the next minute's pass: the same failures, not logged again
        assert sorted(again.failed) == sorted(BROKEN)
        states = {a["AlarmName"]: a["StateValue"]
                  for a in cw.describe_alarms(AlarmNamePrefix="after-broken-")["MetricAlarms"]}
        assert states == {"after-broken-hot": "ALARM", "after-broken-cool": "OK"}
        assert sorted(result.failed) == sorted(BROKEN) and result.evaluated >= 2
        with endpoint.service.pools.session(LOCAL) as s:
            assert {s.get(Alarm, (endpoint.account, name)).state for name in BROKEN} == {"INSUFFICIENT_DATA"}, \
                "left as they were"
        lines = [r.getMessage() for r in caplog.records]
        for name in BROKEN:
            assert len([line for line in lines if name in line]) == 1, lines   # once, not once a minute
    finally:
        with endpoint.service.pools.session(LOCAL) as s:
            s.execute(delete(Alarm).where(Alarm.name.in_(BROKEN)))


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
        cw.put_metric_alarm(AlarmName="math", Metrics=[{"Id": "e1", "Expression": "m9 * 2"}],
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold")
    assert err.value.response["Error"]["Code"] == "ValidationError"   # unknown Id (test_cw_math_api.py)


def _metric_alarm(cw, name: str, clock: datetime, values: list[float | None], **alarm) -> None:
    """An alarm on its own series whose datapoints are `values`, one per minute, the newest the minute
    before `clock` (None: no datapoint that minute)."""
    dims = [{"Name": "Alarm", "Value": name}]
    end = clock.replace(second=0)
    data = [{"MetricName": "m", "Dimensions": dims, "Value": v, "Timestamp": end - timedelta(seconds=60 * (len(values) - i) - 30)}
            for i, v in enumerate(values) if v is not None]
    if data:
        cw.put_metric_data(Namespace="Rules", MetricData=data)
    cw.put_metric_alarm(AlarmName=name, Namespace="Rules", MetricName="m", Dimensions=dims, Period=60,
                        ComparisonOperator="GreaterThanThreshold", Threshold=3.0, **alarm)


def test_stored_datapoints_are_evaluated_by_awss_rules(endpoint, monkeypatch):
    """The guide's rules (test_cw_rules.py) applied to datapoints stored through PutMetricData."""
    cw = endpoint.client()
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    cases = {   # name: (values oldest first over the 5-minute evaluation range, alarm, expected state)
        "r-2of3-alarm": ([1.0, None, 5.0, None, 5.0], {"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, "ALARM"),
        "r-3of3-ok": ([1.0, None, 5.0, None, 5.0], {"EvaluationPeriods": 3}, "OK"),
        "r-breaching": ([None, None, None, None, 1.0], {"EvaluationPeriods": 3, "DatapointsToAlarm": 2,
                                                        "TreatMissingData": "breaching"}, "ALARM"),
        "r-missing": ([None, None, None, None, 5.0], {"EvaluationPeriods": 3}, "INSUFFICIENT_DATA"),
        "r-notbreaching": ([None, None, None, None, 5.0], {"EvaluationPeriods": 3,
                                                           "TreatMissingData": "notBreaching"}, "OK"),
    }
    for name, (values, alarm, _) in cases.items():
        _metric_alarm(cw, name, clock, values, Statistic="Maximum", **alarm)
    # a p90 over 20 samples of one minute: 10/(1-0.9) = 100 are needed to be "enough"
    for name, low in (("r-p90-evaluate", "evaluate"), ("r-p90-ignore", "ignore")):
        _metric_alarm(cw, name, clock, [], ExtendedStatistic="p90", EvaluationPeriods=1,
                      EvaluateLowSampleCountPercentile=low)
        cw.put_metric_data(Namespace="Rules", MetricData=[{
            "MetricName": "m", "Dimensions": [{"Name": "Alarm", "Value": name}], "Values": [float(v) for v in range(20)],
            "Timestamp": clock.replace(second=0) - timedelta(seconds=30)}])
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock)
    evaluate_all(endpoint.service)
    states = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNamePrefix="r-")["MetricAlarms"]}
    want = {name: state for name, (_, _, state) in cases.items()}
    assert states == {**want, "r-p90-evaluate": "ALARM", "r-p90-ignore": "INSUFFICIENT_DATA"}


def test_only_the_leader_evaluates(endpoint, monkeypatch):
    monkeypatch.setattr(endpoint.service, "is_leader", lambda: False)
    assert evaluate_all(endpoint.service).evaluated == 0
