"""Anomaly detection: Put/Describe/DeleteAnomalyDetector (single-metric, account scoped) through real
botocore clients in all three protocols, ANOMALY_DETECTION_BAND in GetMetricData, and a band alarm.

Sources: botocore's model (PutAnomalyDetectorInput: SingleMetricAnomalyDetector or the deprecated
Namespace/MetricName/Dimensions/Stat, MetricMathAnomalyDetector; DescribeAnomalyDetectorsInput:
"If empty, defaults to SINGLE_METRIC", MaxResults at most 100; DeleteAnomalyDetector's errors list
ResourceNotFoundException, 404 in the Smithy model). The band's model is eucadb's own (anomaly.py,
docs/cloudwatch-metric-math.md: per hour of day, mean ± k·stddev of the 14 days before StartTime),
so the expected band is computed here from the data the test puts.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from eucadb.services.cloudwatch import anomaly
from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.evaluation import evaluate_all

from cwharness import PROTOCOLS, code_and_status

HOUR = 3600


def single(ns: str, metric: str = "Latency", stat: str = "Average", **kw) -> dict:
    return {"Namespace": ns, "MetricName": metric, "Dimensions": [{"Name": "Host", "Value": "h1"}], "Stat": stat, **kw}



@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_describe_delete(endpoint, protocol):
    cw = endpoint.client(protocol)
    ns = f"Anomaly/{protocol}"
    cw.put_anomaly_detector(SingleMetricAnomalyDetector=single(ns),
                            Configuration={"MetricTimezone": "Europe/Berlin", "ExcludedTimeRanges": [
                                {"StartTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
                                 "EndTime": datetime(2026, 1, 2, tzinfo=timezone.utc)}]})
    cw.put_anomaly_detector(Namespace=ns, MetricName="Errors", Stat="Sum")   # the deprecated members
    found = cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]
    assert sorted(d["SingleMetricAnomalyDetector"]["MetricName"] for d in found) == ["Errors", "Latency"]
    latency = next(d for d in found if d["MetricName"] == "Latency")
    assert latency["SingleMetricAnomalyDetector"] == {**single(ns), "AccountId": endpoint.account}
    assert latency["Configuration"]["MetricTimezone"] == "Europe/Berlin"
    assert latency["Configuration"]["ExcludedTimeRanges"][0]["StartTime"] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert latency["StateValue"] == "PENDING_TRAINING"   # no data yet (AnomalyDetectorStateValue enum)
    # filters: MetricName, Dimensions; METRIC_MATH alone lists nothing (none can exist here)
    assert [d["MetricName"] for d in cw.describe_anomaly_detectors(Namespace=ns, MetricName="Errors")
            ["AnomalyDetectors"]] == ["Errors"]
    assert [d["MetricName"] for d in cw.describe_anomaly_detectors(
        Namespace=ns, Dimensions=[{"Name": "Host", "Value": "h1"}])["AnomalyDetectors"]] == ["Latency"]
    assert cw.describe_anomaly_detectors(Namespace=ns, AnomalyDetectorTypes=["METRIC_MATH"])["AnomalyDetectors"] == []
    page = cw.describe_anomaly_detectors(Namespace=ns, MaxResults=1)
    rest = cw.describe_anomaly_detectors(Namespace=ns, MaxResults=1, NextToken=page["NextToken"])
    assert len(page["AnomalyDetectors"]) == len(rest["AnomalyDetectors"]) == 1 and "NextToken" not in rest
    # a second Put of the same metric and statistic replaces it (no duplicate)
    cw.put_anomaly_detector(SingleMetricAnomalyDetector=single(ns))
    assert len(cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]) == 2
    cw.delete_anomaly_detector(SingleMetricAnomalyDetector=single(ns))
    assert [d["MetricName"] for d in cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]] == ["Errors"]
    with pytest.raises(ClientError) as err:
        cw.delete_anomaly_detector(SingleMetricAnomalyDetector=single(ns))
    assert code_and_status(err) == ("ResourceNotFoundException", 404)
    cw.delete_anomaly_detector(Namespace=ns, MetricName="Errors", Stat="Sum")
    assert cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("args, code", [
    ({"MetricMathAnomalyDetector": {"MetricDataQueries": [{"Id": "e1", "Expression": "m1 * 2"}]}},
     "InvalidParameterValue"),                                               # not served, said so
    ({"SingleMetricAnomalyDetector": single("A"), "Namespace": "A"}, "InvalidParameterCombination"),
    ({"SingleMetricAnomalyDetector": {"Namespace": "A", "MetricName": "m"}}, "MissingParameter"),
    ({"SingleMetricAnomalyDetector": single("A", stat="Median")}, "InvalidParameterValue"),
    ({"SingleMetricAnomalyDetector": single("A"), "Configuration": {"MetricTimezone": "Mars/Olympus"}},
     "InvalidParameterValue"),
    ({"SingleMetricAnomalyDetector": single("A", AccountId="999999999999")}, "InvalidParameterValue"),
], ids=["metric-math", "both-forms", "no-stat", "bad-stat", "bad-timezone", "other-account"])
def test_bad_puts_are_refused_and_store_nothing(endpoint, protocol, args, code):
    cw = endpoint.client(protocol)
    with pytest.raises(ClientError) as err:
        cw.put_anomaly_detector(**args)
    assert code_and_status(err) == (code, 400)
    assert cw.describe_anomaly_detectors(Namespace="A")["AnomalyDetectors"] == []


def test_detectors_are_the_accounts_own(endpoint):
    a, b = endpoint.as_account("444455556666").client("json"), endpoint.as_account("777788889999").client("json")
    a.put_anomaly_detector(SingleMetricAnomalyDetector=single("Anomaly/Tenancy"))
    assert b.describe_anomaly_detectors(Namespace="Anomaly/Tenancy")["AnomalyDetectors"] == []
    with pytest.raises(ClientError) as err:   # another account's detector answers as a missing one
        b.delete_anomaly_detector(SingleMetricAnomalyDetector=single("Anomaly/Tenancy"))
    assert code_and_status(err) == ("ResourceNotFoundException", 404)
    assert len(a.describe_anomaly_detectors(Namespace="Anomaly/Tenancy")["AnomalyDetectors"]) == 1


def hourly_training(cw, ns: str, now: datetime) -> dict[int, float]:
    """13 days of hourly values with a daily cycle and some spread; the values put, by timestamp."""
    top = now.replace(minute=0, second=0, microsecond=0)
    values = {}
    for i in range(24, 13 * 24):
        t = top - timedelta(hours=i)
        values[int(t.timestamp())] = 100.0 + 10 * (t.hour % 6) + (i % 5)
    data = [{"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "h1"}],
             "Timestamp": datetime.fromtimestamp(t, timezone.utc), "Value": v} for t, v in values.items()]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace=ns, MetricData=data[i:i + 500])
    return values


def expected_band(values: dict[int, float], t: int, k: float) -> tuple[float, float]:
    same = [v for s, v in values.items() if datetime.fromtimestamp(s, timezone.utc).hour ==
            datetime.fromtimestamp(t, timezone.utc).hour]
    mean = sum(same) / len(same)
    sd = math.sqrt(sum((v - mean) ** 2 for v in same) / len(same))
    return mean + k * sd, mean - k * sd


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_anomaly_detection_band_in_get_metric_data(endpoint, protocol):
    cw = endpoint.client(protocol)
    ns = f"Anomaly/Band/{protocol}"
    now = datetime.now(timezone.utc)
    values = hourly_training(cw, ns, now)
    queries = [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": [
                    {"Name": "Host", "Value": "h1"}]}, "Period": HOUR, "Stat": "Average"}},
               {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1, 3)"}]
    start, end = now - timedelta(hours=4), now
    assert cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"] == []
    # no detector yet: the band makes one with no configuration (AWS does so for band alarms,
    # aws/aws-cdk#19956), and its model is trained at once on the history
    results = cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)["MetricDataResults"]
    made = cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]
    assert [(d["SingleMetricAnomalyDetector"]["MetricName"], d["Stat"], d["StateValue"]) for d in made] == [
        ("Latency", "Average", "TRAINED")]
    band = {r["Label"]: r for r in results if r["Id"] == "e1"}
    assert set(band) == {"Latency Upper", "Latency Lower"}
    stamps = [int(t.timestamp()) for t in band["Latency Upper"]["Timestamps"]]
    assert len(stamps) >= 4
    for t, hi, lo in zip(stamps, band["Latency Upper"]["Values"], band["Latency Lower"]["Values"]):
        want_hi, want_lo = expected_band(values, t, 3.0)
        assert (hi, lo) == (pytest.approx(want_hi), pytest.approx(want_lo))
        assert hi > lo


def test_a_band_alarm_goes_to_alarm_outside_the_band(endpoint, monkeypatch):
    cw = endpoint.client("json")
    ns = "Anomaly/Alarm"
    now = datetime.now(timezone.utc)
    hourly_training(cw, ns, now)   # no PutAnomalyDetector: the evaluator's band makes the detector
    last_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Latency", "Dimensions": [
        {"Name": "Host", "Value": "h1"}], "Timestamp": last_hour + timedelta(minutes=5), "Value": 10_000.0}])
    cw.put_metric_alarm(AlarmName="anomaly-band", EvaluationPeriods=1, ThresholdMetricId="e1",
                        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold", Metrics=[
                            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency",
                                                                   "Dimensions": [{"Name": "Host", "Value": "h1"}]},
                                                        "Period": HOUR, "Stat": "Average"}},
                            {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}])
    monkeypatch.setattr(endpoint.service, "clock", lambda: now)
    evaluate_all(endpoint.service)
    assert cw.describe_alarms(AlarmNames=["anomaly-band"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    assert len(cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]) == 1
    evaluate_all(endpoint.service)   # the next pass finds it: still one
    assert len(cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]) == 1


def test_the_model_follows_the_time_zone_and_skips_excluded_ranges():
    key = SeriesKey.of("N", "m", None)
    day = int(datetime(2026, 4, 1, tzinfo=timezone.utc).timestamp())
    # a week of hourly values equal to their UTC hour, across Berlin's switch to summer time (29 March)
    training = {day - d * 86400 + h * HOUR: float(h) for d in range(1, 8) for h in range(24)}
    grid = [day + 10 * HOUR]                                  # 10:00 UTC = 12:00 in Berlin (CEST)
    upper, lower = anomaly.band(anomaly.Detector(key, "Average"), training, grid, 2)
    assert upper == lower == {grid[0]: 10.0}                 # 10:00 UTC saw 10 every day, stddev 0
    berlin = anomaly.band(anomaly.Detector(key, "Average", timezone="Europe/Berlin"), training, grid, 2)
    # 12:00 Berlin was 10:00 UTC on the 3 summer-time days and 11:00 UTC on the 4 days before
    mean = (3 * 10 + 4 * 11) / 7
    sd = math.sqrt((3 * (10 - mean) ** 2 + 4 * (11 - mean) ** 2) / 7)
    assert berlin == ({grid[0]: pytest.approx(mean + 2 * sd)}, {grid[0]: pytest.approx(mean - 2 * sd)})
    cut = anomaly.Detector(key, "Average", excluded=((datetime.fromtimestamp(day - 7 * 86400, timezone.utc),
                                                      datetime.fromtimestamp(day - 2 * 86400, timezone.utc)),))
    assert anomaly.band(cut, training, grid, 2) == ({}, {})   # two days left: fewer than MIN_SAMPLES
