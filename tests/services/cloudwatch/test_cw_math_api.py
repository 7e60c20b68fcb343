"""GetMetricData with metric math, SEARCH and Metrics Insights, and metric-math alarms, through
botocore's own serializers and parsers in each of the three protocols (what `aws cloudwatch
get-metric-data` sends). Expected values are computed by hand from the data put; the semantics
are those of using-metric-math.html (see test_cw_math.py for the function-by-function cases)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import json

import pytest
from botocore.exceptions import ClientError

from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.cloudwatch.tables import Alarm

from cwharness import PROTOCOLS

NS = "Math/E2E"
REQUESTS = {"h1": [10, 20, 30, 40, 50], "h2": [1, 2, None, 4, 5]}
ERRORS = {"h1": [1, 0, 3, 0, 5]}


def stat(metric: str, host: str, stat_name: str = "Sum") -> dict:
    return {"Metric": {"Namespace": NS, "MetricName": metric, "Dimensions": [{"Name": "Host", "Value": host}]},
            "Period": 60, "Stat": stat_name}


@pytest.fixture(scope="module")
def window(endpoint):
    """Five one-minute periods ending at the current minute; one datum per period (10 s in)."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    base = end - timedelta(minutes=5)
    data = []
    for metric, by_host in (("Requests", REQUESTS), ("Errors", ERRORS)):
        for host, values in by_host.items():
            data += [{"MetricName": metric, "Dimensions": [{"Name": "Host", "Value": host}], "Value": float(v),
                      "Timestamp": base + timedelta(minutes=i, seconds=10)} for i, v in enumerate(values) if v is not None]
    endpoint.client().put_metric_data(Namespace=NS, MetricData=data)
    return base, end


def gmd(cw, window, queries: list[dict]) -> dict[str, list[dict]]:
    base, end = window
    out = cw.get_metric_data(MetricDataQueries=queries, StartTime=base, EndTime=end, ScanBy="TimestampAscending")
    by_id: dict[str, list[dict]] = {}
    for r in out["MetricDataResults"]:
        by_id.setdefault(r["Id"], []).append(r)
    return by_id


def minutes(window, result: dict) -> list[int]:
    return [int((t - window[0]).total_seconds()) // 60 for t in result["Timestamps"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_arithmetic_and_functions(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    got = gmd(cw, window, [
        {"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
        {"Id": "m2", "MetricStat": stat("Requests", "h2"), "ReturnData": False},
        {"Id": "e1", "Expression": "m1 + m2", "Label": "Total"},
        {"Id": "e2", "Expression": "RATE(m1)"},
        {"Id": "e3", "Expression": "FILL(m2, LINEAR)"},
        {"Id": "e4", "Expression": "IF(m2 > 2, m1, 0) * 2"},
        {"Id": "e5", "Expression": "m1 - AVG(m1)"},
    ])
    assert set(got) == {"e1", "e2", "e3", "e4", "e5"}           # ReturnData False: m1, m2 not returned
    [e1], [e2], [e3], [e4], [e5] = got["e1"], got["e2"], got["e3"], got["e4"], got["e5"]
    assert (e1["Label"], e1["Values"], minutes(window, e1)) == ("Total", [11, 22, 30, 44, 55], [0, 1, 2, 3, 4])
    assert e2["Label"] == "e2" and e2["Values"] == [10 / 60] * 4 and minutes(window, e2) == [1, 2, 3, 4]
    assert e3["Values"] == [1, 2, 3, 4, 5]
    assert e4["Values"] == [0, 0, 80, 100]                      # m2 missing at minute 2: no datapoint
    assert e5["Values"] == [-20, -10, 0, 10, 20]
    assert all(r["StatusCode"] == "Complete" for r in (e1, e2, e3, e4, e5))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_arrays_give_one_result_per_series_under_the_query_id(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    got = gmd(cw, window, [
        {"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False, "Label": "web"},
        {"Id": "m2", "MetricStat": stat("Requests", "h2"), "ReturnData": False, "Label": "db"},
        {"Id": "e1", "Expression": "SORT(METRICS(), SUM, ASC)", "Label": "sorted"},
        {"Id": "e2", "Expression": "SUM(METRICS())"},
    ])
    assert [(r["Label"], r["Values"]) for r in got["e1"]] == [("sorted db", [1, 2, 4, 5]),
                                                              ("sorted web", [10, 20, 30, 40, 50])]
    assert got["e2"][0]["Values"] == [11, 22, 30, 44, 55]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_array_results_page_with_max_datapoints_and_next_token(endpoint, window, protocol):
    """Paging counts results, so the members of one array result page like separate queries."""
    cw = endpoint.client(protocol)
    kwargs = dict(MetricDataQueries=[{"Id": "s1", "Expression": f"SEARCH('{{{NS},Host}}', 'Sum', 60)"}],
                  StartTime=window[0], EndTime=window[1], ScanBy="TimestampAscending")
    whole = cw.get_metric_data(**kwargs)["MetricDataResults"]
    assert [r["Label"] for r in whole] == ["h1 Errors", "h1 Requests", "h2 Requests"]   # sorted by name
    collected: dict[str, list] = {}
    token, calls = None, 0
    while True:
        out = cw.get_metric_data(**kwargs, MaxDatapoints=3, **({"NextToken": token} if token else {}))
        calls += 1
        assert sum(len(r["Values"]) for r in out["MetricDataResults"]) <= 3
        for r in out["MetricDataResults"]:
            collected.setdefault(r["Label"], []).extend(r["Values"])
        token = out.get("NextToken")
        if not token:
            break
    assert calls == 5 and collected == {r["Label"]: r["Values"] for r in whole}   # 14 values, 3 a call


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_search_over_the_catalogue(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    got = gmd(cw, window, [
        {"Id": "s1", "Expression": f"SEARCH('{{{NS},Host}} MetricName=\"Requests\"', 'Sum', 60)"},
        {"Id": "s2", "Expression": f"SUM(SEARCH('{{{NS},Host}} Errors OR Requests', 'Maximum', 60))"},
        {"Id": "s3", "Expression": f"SEARCH('{{{NS},Host}} NoSuchMetric', 'Sum', 60)"},
    ])
    assert [(r["Label"], r["Values"]) for r in got["s1"]] == [("h1 Requests", [10, 20, 30, 40, 50]),
                                                              ("h2 Requests", [1, 2, 4, 5])]
    assert got["s2"][0]["Values"] == [12, 22, 33, 44, 60]
    assert "s3" not in got                                      # an empty array: no result


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metrics_insights_query(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    got = gmd(cw, window, [{"Id": "q1", "Period": 60, "Expression":
                            f'SELECT SUM(Requests) FROM SCHEMA("{NS}", Host) GROUP BY Host ORDER BY SUM() ASC LIMIT 5'}])
    # "each GetMetricData operation can include only one query" (Metrics Insights), so a second call
    got.update(gmd(cw, window, [{"Id": "q2", "Period": 60,
                                 "Expression": f"SELECT MAX(Requests) FROM \"{NS}\" WHERE Host = 'h2'"},
                                {"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
                                {"Id": "e1", "Expression": "q2 + m1"}]))
    assert [(r["Label"], r["Values"]) for r in got["q1"]] == [("h2", [1, 2, 4, 5]), ("h1", [10, 20, 30, 40, 50])]
    assert got["q2"][0]["Label"] == "q2" and got["q2"][0]["Values"] == [1, 2, 4, 5]
    assert got["e1"][0]["Values"] == [11, 22, 30, 44, 55]        # an Insights result in math


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_division_by_zero_drops_points_with_an_arithmetic_error_message(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    got = gmd(cw, window, [{"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
                           {"Id": "m2", "MetricStat": stat("Errors", "h1"), "ReturnData": False},
                           {"Id": "e1", "Expression": "m1 / m2"}])
    [e1] = got["e1"]
    assert e1["Values"] == [10, 10, 10] and minutes(window, e1) == [0, 2, 4]
    assert e1["Messages"] == [{"Code": "ArithmeticError", "Value": "One or more data-points have been dropped due "
                                                                   "to non-numeric values (NaN, -Infinite, +Infinite)"}]


BAD = [
    ([{"Id": "e1", "Expression": "m1 +"}], "Error in expression e1: Syntax error"),
    ([{"Id": "e1", "Expression": "m9 * 2"}], "Error in expression e1: Unknown metric or expression Id m9"),
    ([{"Id": "e1", "Expression": "e2 + 1"}, {"Id": "e2", "Expression": "e1 * 2"}],
     "Error in expression e1: Circular dependency between queries: e1 -> e2 -> e1"),
    ([{"Id": "e1", "Expression": "MEDIAN(METRICS())"}], "Error in expression e1: Unrecognized function MEDIAN"),
    # AWS's functions not served here (README): named as such, not as unknown functions
    ([{"Id": "e1", "Expression": "INSIGHT_RULE_METRIC('rule', 'Sum')"}],
     "Error in expression e1: INSIGHT_RULE_METRIC is not available: Contributor Insights rules"),
    # a band needs a MetricStat query (metric math detectors are not served; test_cw_anomaly.py)
    ([{"Id": "m1", "MetricStat": stat("Requests", "h1")}, {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1 * 2)"}],
     "ANOMALY_DETECTION_BAND needs the Id of a MetricStat query"),
    ([{"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
      {"Id": "e1", "Expression": "AVG(m1)"}], "must return a time series or an array of time series, not a scalar"),
    ([{"Id": "e1", "Expression": "SELECT SUM(Requests) FROM x"}], "needs the Period of its MetricDataQuery"),
    ([{"Id": "e1", "Expression": f"SEARCH('{{{NS},Host}}', 'Median', 60)"}], "The statistic 'Median' of SEARCH is not valid"),
    ([{"Id": "e1", "Expression": "m1", "MetricStat": stat("Requests", "h1")}],
     "must contain either an Expression or a MetricStat, but not both"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("queries,message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_expressions_are_validation_errors(endpoint, window, protocol, queries, message):
    cw = endpoint.client(protocol)
    with pytest.raises(ClientError) as err:
        cw.get_metric_data(MetricDataQueries=queries, StartTime=window[0], EndTime=window[1])
    error = err.value.response["Error"]
    assert error["Code"] == "ValidationError" and message in error["Message"], error
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _evaluate_at(endpoint, clock: datetime) -> None:
    real = endpoint.service.clock
    endpoint.service.clock = lambda: clock
    try:
        evaluate_all(endpoint.service)
    finally:
        endpoint.service.clock = real


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metric_math_alarm_is_accepted_described_and_evaluated(endpoint, window, protocol):
    cw = endpoint.client(protocol)
    metrics = [{"Id": "req", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
               {"Id": "err", "MetricStat": stat("Errors", "h1"), "ReturnData": False},
               {"Id": "ratio", "Expression": "100 * err / req", "Label": "error %", "ReturnData": True}]
    name = f"math-{protocol}"
    # newest two periods: minutes 3 and 4 → 100*0/40 = 0, 100*5/50 = 10; 1 of 2 needed above 5
    cw.put_metric_alarm(AlarmName=name, Metrics=metrics, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=5.0,
                        ComparisonOperator="GreaterThanThreshold")
    quiet = f"math-quiet-{protocol}"
    cw.put_metric_alarm(AlarmName=quiet, Metrics=metrics, EvaluationPeriods=2, Threshold=50.0,
                        ComparisonOperator="GreaterThanThreshold")
    band = f"math-band-{protocol}"
    cw.put_metric_alarm(AlarmName=band, ThresholdMetricId="band", EvaluationPeriods=2,
                        ComparisonOperator="GreaterThanUpperThreshold",
                        Metrics=[{"Id": "req", "MetricStat": stat("Requests", "h1"), "ReturnData": True},
                                 {"Id": "band", "Expression": "[TIME_SERIES(35), TIME_SERIES(5)]", "ReturnData": True}])
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert [m["Id"] for m in alarm["Metrics"]] == ["req", "err", "ratio"]
    assert alarm["Metrics"][2]["Expression"] == "100 * err / req" and alarm["StateValue"] == "INSUFFICIENT_DATA"
    _evaluate_at(endpoint, window[1] + timedelta(seconds=5))
    states = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=[name, quiet, band])["MetricAlarms"]}
    assert states[name]["StateValue"] == "ALARM", states[name]["StateReason"]
    assert "[0.0, 10.0]" in states[name]["StateReason"]
    assert states[quiet]["StateValue"] == "OK"
    assert states[band]["StateValue"] == "ALARM"                # 40 and 50 are above the upper bound 35
    assert states[band]["ThresholdMetricId"] == "band"


ALARM_BAD = [
    (dict(Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1")}, {"Id": "e1", "Expression": "m1 * 2"}],
          Threshold=1.0), "ValidationError", "Exactly one element of the metrics list should return data."),
    (dict(Metrics=[{"Id": "e1", "Expression": "m9 * 2"}], Threshold=1.0), "ValidationError", "Unknown metric or expression Id m9"),
    (dict(Metrics=[{"Id": "e1", "Expression": f"SEARCH('{{{NS}}}', 'Sum', 60)"}], Threshold=1.0),
     "ValidationError", "An alarm cannot watch a SEARCH expression"),
    (dict(Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1")}], Threshold=1.0, Namespace=NS),
     "InvalidParameterCombination", "cannot be specified together"),
    (dict(Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1")}], ThresholdMetricId="zz"),
     "ValidationError", "ThresholdMetricId zz does not match any Id"),
    (dict(Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
                   {"Id": "e1", "Expression": "METRICS()"}], Threshold=1.0),
     "ValidationError", "The expression an alarm watches must return a single time series."),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("extra,code,message", ALARM_BAD, ids=[f"bad{i}" for i in range(len(ALARM_BAD))])
def test_bad_metric_math_alarms_are_refused_and_change_nothing(endpoint, protocol, extra, code, message):
    cw = endpoint.client(protocol)
    name = f"refused-{protocol}"
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(AlarmName=name, EvaluationPeriods=1, ComparisonOperator="GreaterThanThreshold", **extra)
    error = err.value.response["Error"]
    assert error["Code"] == code and message in error["Message"], error
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_a_stored_math_alarm_the_engine_refuses_does_not_stop_the_others(endpoint, window):
    """Definitions PutMetricAlarm would refuse, written straight into the local table (another
    version's store): the evaluator logs and skips them and still evaluates the good alarm."""
    cw = endpoint.client()
    base = {"EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    broken = {"math-broken-syntax": [{"Id": "e1", "Expression": "m1 +"}],
              "math-broken-array": [{"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
                                    {"Id": "e1", "Expression": "METRICS()"}]}
    with endpoint.service.pools.session(LOCAL) as s:
        s.add_all(Alarm(account=endpoint.account, name=name, definition=json.dumps({"AlarmName": name, "Metrics": metrics, **base}),
                        state="INSUFFICIENT_DATA", state_reason="stored") for name, metrics in broken.items())
    cw.put_metric_alarm(AlarmName="math-good", Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1")}], **base)
    real = endpoint.service.clock
    endpoint.service.clock = lambda: window[1] + timedelta(seconds=5)
    try:
        result = evaluate_all(endpoint.service)
    finally:
        endpoint.service.clock = real
        with endpoint.service.pools.session(LOCAL) as s:
            for name in broken:
                s.delete(s.get(Alarm, (endpoint.account, name)))
    assert set(broken) <= set(result.failed)
    [good] = cw.describe_alarms(AlarmNames=["math-good"])["MetricAlarms"]
    assert good["StateValue"] == "ALARM"      # Requests h1 newest minute: 50 > 1


def test_a_math_alarm_on_non_finite_values_sees_no_data(endpoint, window):
    """MAX(m1) * 1e308 overflows to a scalar Infinity; its datapoints are dropped (as GetMetricData
    drops them), so the alarm has no data instead of breaching on Infinity and storing it in
    StateReasonData (DescribeAlarms stays strict JSON)."""
    cw = endpoint.client("json")
    cw.put_metric_alarm(AlarmName="math-overflow", EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanThreshold",
                        Metrics=[{"Id": "m1", "MetricStat": stat("Requests", "h1"), "ReturnData": False},
                                 {"Id": "e1", "Expression": "TIME_SERIES(MAX(m1) * 1e308)"}])
    cw.set_alarm_state(AlarmName="math-overflow", StateValue="OK", StateReason="test")
    _evaluate_at(endpoint, window[1] + timedelta(seconds=5))
    [alarm] = cw.describe_alarms(AlarmNames=["math-overflow"])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == []   # no finite datapoint
