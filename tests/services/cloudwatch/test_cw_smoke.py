"""Every operation once through boto3, in each of the three protocols boto3 itself implements."""
from datetime import datetime, timedelta, timezone

import pytest

PROTOCOLS = [None, "smithy-rpc-v2-cbor", "json", "query"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_operation(endpoint, protocol):
    cw = endpoint.client(protocol)
    ns = f"Smoke/{protocol}"
    dims = [{"Name": "a", "Value": "1"}]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "m", "Dimensions": dims, "Value": 2.0, "Timestamp": now, "Unit": "Count"},
        {"MetricName": "m", "Dimensions": dims, "Values": [1.0, 3.0], "Counts": [1, 2], "Timestamp": now,
         "Unit": "Count"},
        {"MetricName": "m", "Dimensions": dims, "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4,
                                                                    "Maximum": 6}, "Timestamp": now, "Unit": "Count"}])
    window = dict(Namespace=ns, MetricName="m", Dimensions=dims, StartTime=now - timedelta(minutes=5),
                  EndTime=now + timedelta(minutes=5), Period=60)
    [point] = cw.get_metric_statistics(**window, Statistics=["Sum", "SampleCount", "Average", "Minimum",
                                                             "Maximum"])["Datapoints"]
    assert (point["Sum"], point["SampleCount"], point["Average"], point["Minimum"], point["Maximum"]) == \
        (19.0, 6.0, 19.0 / 6, 1.0, 6.0)
    assert point["Unit"] == "Count"
    [point] = cw.get_metric_statistics(**window, ExtendedStatistics=["p50", "p99"])["Datapoints"]
    assert point["ExtendedStatistics"] == {"p50": 2.0, "p99": 3.0}   # samples 1,2,3,3; sets have none
    assert cw.list_metrics(Namespace=ns)["Metrics"] == [{"Namespace": ns, "MetricName": "m", "Dimensions": dims}]
    data = cw.get_metric_data(StartTime=window["StartTime"], EndTime=window["EndTime"], MetricDataQueries=[
        {"Id": "q1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "m", "Dimensions": dims},
                                    "Period": 60, "Stat": "Maximum"}}])
    [result] = data["MetricDataResults"]
    assert result["Id"] == "q1" and result["Values"] == [6.0] and result["StatusCode"] == "Complete"
    name = f"alarm-{protocol}"
    cw.put_metric_alarm(AlarmName=name, MetricName="m", Namespace=ns, Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        Dimensions=dims)
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA" and alarm["Threshold"] == 1.0
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"
    items = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate"]
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.delete_alarms(AlarmNames=[name])
