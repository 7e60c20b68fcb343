"""Semantics real clients rely on: datapoints per unit, StartTime rounding, the request id header,
and an alarm change that is one outcome with its history even while the remote database is away."""
from __future__ import annotations

import http.client
import io
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from eucadb.services.cloudwatch import history
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.datapoints import REMOTE
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.cloudwatch.tables import HistoryOutbox

from cwharness import PROTOCOLS


def minute_ago(minutes: int) -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_statistics_without_unit_answer_one_datapoint_per_unit(endpoint, protocol):
    """"If you don't specify Unit, CloudWatch returns all data that was collected with any unit, along
    with the corresponding units that were specified when the data was reported" — one datapoint per
    unit (GetMetricStatistics Unit, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html)."""
    cw = endpoint.client(protocol)
    ns, t0 = f"Units/{protocol}", minute_ago(20)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "m", "Value": 1.0, "Unit": "Count", "Timestamp": t0 + timedelta(seconds=5)},
        {"MetricName": "m", "Value": 2.0, "Unit": "Count", "Timestamp": t0 + timedelta(seconds=6)},
        {"MetricName": "m", "Value": 10.0, "Unit": "Seconds", "Timestamp": t0 + timedelta(seconds=7)}])
    window = dict(Namespace=ns, MetricName="m", StartTime=t0, EndTime=t0 + timedelta(minutes=1), Period=60)
    points = cw.get_metric_statistics(**window, Statistics=["Sum", "SampleCount"])["Datapoints"]
    assert sorted((p["Unit"], p["Sum"], p["SampleCount"]) for p in points) == [("Count", 3.0, 2.0),
                                                                               ("Seconds", 10.0, 1.0)]
    assert {p["Timestamp"] for p in points} == {t0}
    points = cw.get_metric_statistics(**window, Statistics=["Sum"], Unit="Seconds")["Datapoints"]
    assert [(p["Unit"], p["Sum"]) for p in points] == [("Seconds", 10.0)]
    points = cw.get_metric_statistics(**window, ExtendedStatistics=["p100"])["Datapoints"]
    assert sorted((p["Unit"], p["ExtendedStatistics"]["p100"]) for p in points) == [("Count", 2.0), ("Seconds", 10.0)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_start_time_is_rounded_down_as_aws_documents(endpoint, protocol):
    """"Start time less than 15 days ago - Round down to the nearest whole minute. For example, 12:32:34 is
    rounded down to 12:32:00"; for Period 5, 10, 30 "rounded down to the nearest time that corresponds to
    even 5-, 10-, 20-, or 30-second divisions of a minute" (GetMetricStatistics StartTime,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html)."""
    cw = endpoint.client(protocol)
    ns, t0 = f"Rounding/{protocol}", minute_ago(30)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "m", "Value": 7.0, "Timestamp": t0 + timedelta(seconds=10), "StorageResolution": 1},
        {"MetricName": "m", "Value": 100.0, "Timestamp": t0 - timedelta(seconds=1), "StorageResolution": 1}])
    points = cw.get_metric_statistics(Namespace=ns, MetricName="m", StartTime=t0 + timedelta(seconds=30),
                                      EndTime=t0 + timedelta(seconds=90), Period=60, Statistics=["Sum"])["Datapoints"]
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(t0, 7.0)]
    points = cw.get_metric_statistics(Namespace=ns, MetricName="m", StartTime=t0 + timedelta(seconds=13),
                                      EndTime=t0 + timedelta(seconds=20), Period=10, Statistics=["Sum"])["Datapoints"]
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(t0 + timedelta(seconds=10), 7.0)]


def app_headers(endpoint, req) -> list[tuple[str, str]]:
    """The header names exactly as the application gives them to the server (waitress title-cases
    names on the wire, X-Amzn-Requestid; HTTP header names are case-insensitive)."""
    url = urlsplit(req.url)
    body = req.body if isinstance(req.body, bytes) else (req.body or "").encode()
    environ = {"REQUEST_METHOD": req.method, "PATH_INFO": url.path, "QUERY_STRING": "", "SCRIPT_NAME": "",
               "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": url.netloc}
    for k, v in req.headers.items():
        if k.lower() == "content-type":
            environ["CONTENT_TYPE"] = v
        elif k.lower() != "content-length":
            environ["HTTP_" + k.upper().replace("-", "_")] = v
    seen: list[tuple[str, str]] = []
    endpoint.api(environ, lambda status, headers: seen.extend(headers))
    return seen


def wire_headers(req) -> list[tuple[str, str]]:
    url = urlsplit(req.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(req.method, url.path or "/", body=req.body, headers=dict(req.headers))
        resp = conn.getresponse()
        resp.read()
        return resp.getheaders()
    finally:
        conn.close()


REQUESTS = {
    "query": lambda e: e.signed(b"Action=ListMetrics&Version=2010-08-01",
                                {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
    "json": lambda e: e.signed(b"{}", {"Content-Type": "application/x-amz-json-1.0",
                                       "X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics"}),
    "cbor": lambda e: e.signed(b"\xa0", {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                               path="/service/GraniteServiceVersion20100801/operation/ListMetrics"),
    "query-error": lambda e: e.signed(b"Action=NoSuchAction&Version=2010-08-01",
                                      {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
}


@pytest.mark.parametrize("kind", REQUESTS)
def test_every_response_carries_x_amzn_request_id(endpoint, kind):
    """AWS answers every CloudWatch request, in every protocol, with the header `x-amzn-RequestId`
    (AWS Query responses included; botocore's Query parser takes the id from the XML, so only the
    header's presence on the wire shows it)."""
    headers = app_headers(endpoint, REQUESTS[kind](endpoint))
    ids = [v for k, v in headers if k == "x-amzn-RequestId"]
    assert len(ids) == 1 and len(ids[0]) == 36, headers
    headers = wire_headers(REQUESTS[kind](endpoint))
    assert len([v for k, v in headers if k.lower() == "x-amzn-requestid"]) == 1, headers


def test_boto3_sees_the_request_id_header_in_every_protocol(endpoint):
    for protocol in PROTOCOLS:
        meta = endpoint.client(protocol).list_metrics(Namespace="Nothing")["ResponseMetadata"]
        assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"], protocol


def _summaries(cw, name: str) -> list[str]:
    return [i["HistorySummary"] for i in cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]]


def test_alarm_changes_and_their_history_are_one_outcome_while_the_remote_is_down(endpoint):
    """A refused request changes nothing and an accepted one changes everything it says: with the
    remote database (alarm history) away, PutMetricAlarm, SetAlarmState and DeleteAlarms succeed and
    their history events wait in the local outbox, committed with the change; the evaluator's next
    pass delivers them, once each."""
    cw = endpoint.client("json", retries={"total_max_attempts": 1})
    pools = endpoint.service.pools
    args = dict(Namespace="Outbox", MetricName="m", Statistic="Sum", Period=60, EvaluationPeriods=1,
                Threshold=1.0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore")
    cw.put_metric_alarm(AlarmName="outbox-doomed", **args)
    before = history.pending(pools)
    pools.remote_ready = False
    try:
        cw.put_metric_alarm(AlarmName="outbox-new", **args)
        cw.set_alarm_state(AlarmName="outbox-new", StateValue="ALARM", StateReason="by hand")
        cw.delete_alarms(AlarmNames=["outbox-doomed"])
        assert [a["StateValue"] for a in cw.describe_alarms(AlarmNames=["outbox-new"])["MetricAlarms"]] == ["ALARM"]
        assert cw.describe_alarms(AlarmNames=["outbox-doomed"])["MetricAlarms"] == []
        assert history.pending(pools) == before + 3
        with pytest.raises(cw.exceptions.ClientError) as err:   # reading the history needs the remote
            cw.describe_alarm_history(AlarmName="outbox-new")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        pools.remote_ready = True
    evaluate_all(endpoint.service)
    assert history.pending(pools) == 0
    assert _summaries(cw, "outbox-new") == ["Alarm updated from INSUFFICIENT_DATA to ALARM", 'Alarm "outbox-new" created']
    assert _summaries(cw, "outbox-doomed") == ['Alarm "outbox-doomed" deleted', 'Alarm "outbox-doomed" created']
    cw.delete_alarms(AlarmNames=["outbox-new"])


def test_a_delivery_cut_off_before_the_local_delete_is_not_delivered_twice(endpoint):
    """The remote commit and the local delete are two transactions: when the second never happens the
    events are sent again, and their ids make the second copy a no-op."""
    cw = endpoint.client("json")
    pools = endpoint.service.pools
    pools.remote_ready = False
    try:
        cw.put_metric_alarm(AlarmName="outbox-twice", Namespace="Outbox", MetricName="m", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    finally:
        pools.remote_ready = True
    with pools.session(LOCAL) as s:
        staged = [{"event_id": r.event_id, "account": r.account, "name": r.alarm_name,
                   "ts": r.ts.replace(tzinfo=timezone.utc),
                   "kind": r.item_type, "summary": r.summary, "data": r.data}
                  for r in s.scalars(select(HistoryOutbox).where(HistoryOutbox.alarm_name == "outbox-twice"))]
    assert len(staged) == 1
    with pools.session(REMOTE) as s:   # the first delivery's remote half, then it was cut off
        s.execute(history.INSERT_SQL, staged)
    assert history.deliver(pools) >= 1
    assert _summaries(cw, "outbox-twice") == ['Alarm "outbox-twice" created']
    assert json.loads(cw.describe_alarm_history(AlarmName="outbox-twice")["AlarmHistoryItems"][0]["HistoryData"])[
        "type"] == "Create"
    cw.delete_alarms(AlarmNames=["outbox-twice"])
