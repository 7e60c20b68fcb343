"""Raw AWS Query and JSON 1.0 requests signed with botocore's SigV4Auth; auth failures, the disabled
gate and AWS limits answered in each protocol's own error format."""
from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import cbor2
import pytest

XMLNS = "{http://monitoring.amazonaws.com/doc/2010-08-01/}"
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}
QUERY_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"


def send(req) -> tuple[int, dict, bytes]:
    http = urllib.request.Request(req.url, data=req.body, method=req.method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(http, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def query(endpoint, params: dict, **kw):
    return send(endpoint.signed(urlencode({"Version": "2010-08-01", **params}).encode(), dict(QUERY_HEADERS), **kw))


def jsonrpc(endpoint, op: str, doc: dict, **kw):
    headers = {**JSON_HEADERS, "X-Amz-Target": f"GraniteServiceVersion20100801.{op}"}
    return send(endpoint.signed(json.dumps(doc).encode(), headers, **kw))


def cborrpc(endpoint, op: str, doc: dict, **kw):
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", "Accept": "application/cbor"}
    return send(endpoint.signed(cbor2.dumps(doc), headers, path=CBOR_PATH + op, **kw))


def error_code(status: int, headers: dict, body: bytes) -> str:
    if "xml" in headers.get("content-type", ""):
        return ET.fromstring(body).find(f"{XMLNS}Error/{XMLNS}Code").text
    doc = json.loads(body) if "json" in headers["content-type"] else cbor2.loads(body)
    return headers["x-amzn-query-error"].split(";")[0] if "x-amzn-query-error" in headers else doc["__type"]


def test_raw_query_and_json_round_trip(endpoint):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=30)
    values = [float(i % 17) for i in range(120)]
    form = {"Action": "PutMetricData", "Namespace": "Raw/Query"}
    for i, v in enumerate(values, 1):
        form.update({f"MetricData.member.{i}.MetricName": "q", f"MetricData.member.{i}.Value": repr(v),
                     f"MetricData.member.{i}.Timestamp": (now + timedelta(seconds=15 * i)).isoformat(),
                     f"MetricData.member.{i}.Dimensions.member.1.Name": "k",
                     f"MetricData.member.{i}.Dimensions.member.1.Value": "v"})
    status, _, body = query(endpoint, form)
    assert status == 200, body
    assert ET.fromstring(body).tag == f"{XMLNS}PutMetricDataResponse"
    doc = {"Namespace": "Raw/Json", "MetricData": [
        {"MetricName": "j", "Value": v, "Timestamp": (now + timedelta(seconds=15 * i)).timestamp(),
         "Dimensions": [{"Name": "k", "Value": "v"}]} for i, v in enumerate(values, 1)]}
    status, _, body = jsonrpc(endpoint, "PutMetricData", doc)
    assert status == 200, body
    buckets: dict[int, list[float]] = {}
    for i, v in enumerate(values, 1):
        buckets.setdefault(int((now + timedelta(seconds=15 * i)).timestamp()) // 300 * 300, []).append(v)
    window = {"StartTime": now.isoformat(), "EndTime": (now + timedelta(hours=1)).isoformat(), "Period": "300"}
    status, _, body = query(endpoint, {"Action": "GetMetricStatistics", "Namespace": "Raw/Query", "MetricName": "q",
                                       "Dimensions.member.1.Name": "k", "Dimensions.member.1.Value": "v",
                                       "Statistics.member.1": "Sum", "Statistics.member.2": "SampleCount",
                                       "Statistics.member.3": "Maximum", **window})
    assert status == 200, body
    points = ET.fromstring(body).findall(f".//{XMLNS}Datapoints/{XMLNS}member")
    got = {int(datetime.fromisoformat(p.find(f"{XMLNS}Timestamp").text.replace("Z", "+00:00")).timestamp()):
           (float(p.find(f"{XMLNS}Sum").text), float(p.find(f"{XMLNS}SampleCount").text),
            float(p.find(f"{XMLNS}Maximum").text)) for p in points}
    assert got == {b: (sum(v), len(v), max(v)) for b, v in buckets.items()}
    status, _, body = jsonrpc(endpoint, "GetMetricStatistics", {
        "Namespace": "Raw/Json", "MetricName": "j", "Dimensions": [{"Name": "k", "Value": "v"}],
        "StartTime": now.timestamp(), "EndTime": (now + timedelta(hours=1)).timestamp(), "Period": 300,
        "ExtendedStatistics": ["p50"]})
    assert status == 200, body
    got = {int(p["Timestamp"]): p["ExtendedStatistics"]["p50"] for p in json.loads(body)["Datapoints"]}
    assert got == {b: sorted(v)[(len(v) + 1) // 2 - 1] for b, v in buckets.items()}


def test_gzip_body_is_accepted(endpoint):
    body = gzip.compress(json.dumps({"Namespace": "Raw/Gzip", "MetricData": [
        {"MetricName": "g", "Value": 1.0}]}).encode())
    headers = {**JSON_HEADERS, "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData",
               "Content-Encoding": "gzip"}
    status, _, resp = send(endpoint.signed(body, headers))
    assert status == 200, resp


CALLS = {"query": lambda e, **kw: query(e, {"Action": "ListMetrics"}, **kw),
         "json": lambda e, **kw: jsonrpc(e, "ListMetrics", {}, **kw),
         "cbor": lambda e, **kw: cborrpc(e, "ListMetrics", {}, **kw)}


@pytest.mark.parametrize("protocol", CALLS)
def test_bad_signature_is_403(endpoint, protocol):
    status, headers, body = CALLS[protocol](endpoint, secret="wrong-secret")
    assert status == 403 and error_code(status, headers, body) == "SignatureDoesNotMatch"
    assert b"Traceback" not in body


@pytest.mark.parametrize("protocol", ["query", "json"])
def test_unsigned_expired_and_unknown_key_are_403(endpoint, protocol):
    cw = endpoint.client(protocol, secret="nope")
    with pytest.raises(cw.exceptions.ClientError) as err:
        cw.list_metrics()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    req = endpoint.signed(b"Action=ListMetrics&Version=2010-08-01", dict(QUERY_HEADERS))
    del req.headers["Authorization"]
    status, headers, body = send(req)
    assert status == 403 and error_code(status, headers, body) == "MissingAuthenticationToken"
    old = endpoint.signed(b"Action=ListMetrics&Version=2010-08-01", dict(QUERY_HEADERS))
    old.headers.replace_header("X-Amz-Date", "20200101T000000Z")
    status, headers, body = send(old)
    assert status == 403 and error_code(status, headers, body) == "RequestExpired"
    endpoint.key_id, real = "AKEUNOSUCHKEY0000000", endpoint.key_id
    try:
        status, headers, body = CALLS[protocol](endpoint)
    finally:
        endpoint.key_id = real
    assert status == 403 and error_code(status, headers, body) == "InvalidClientTokenId"


@pytest.mark.parametrize("protocol", CALLS)
def test_disabled_service_is_503_in_protocol_format(endpoint, protocol):
    endpoint.enabled["value"] = False
    try:
        status, headers, body = CALLS[protocol](endpoint)
    finally:
        endpoint.enabled["value"] = True
    assert status == 503 and error_code(status, headers, body) == "ServiceUnavailable"


def test_disabled_service_is_503_through_boto3(endpoint):
    for protocol in (None, "smithy-rpc-v2-cbor", "json", "query"):
        cw = endpoint.client(protocol, retries={"total_max_attempts": 1})
        endpoint.enabled["value"] = False
        try:
            with pytest.raises(cw.exceptions.ClientError) as err:
                cw.list_metrics()
        finally:
            endpoint.enabled["value"] = True
        assert err.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_remote_database_down_is_503(endpoint):
    endpoint.service.pools.remote_ready = False
    try:
        status, headers, body = jsonrpc(endpoint, "PutMetricData", {"Namespace": "Down", "MetricData": [
            {"MetricName": "x", "Value": 1.0}]})
    finally:
        endpoint.service.pools.remote_ready = True
    assert status == 503 and error_code(status, headers, body) == "ServiceUnavailable"


def _datum(**kw):
    return {"MetricName": "x", "Value": 1.0, **kw}


NOW = datetime.now(timezone.utc)
OVER_LIMIT = [
    ("PutMetricData", {"Namespace": "L", "MetricData": [_datum()] * 1001}, "InvalidParameterValue"),
    ("PutMetricData", {"Namespace": "L", "MetricData": [_datum(Dimensions=[
        {"Name": f"d{i}", "Value": "v"} for i in range(31)])]}, "InvalidParameterValue"),
    ("PutMetricData", {"Namespace": "L", "MetricData": [
        {"MetricName": "x", "Values": [1.0] * 151}]}, "InvalidParameterValue"),
    ("PutMetricData", {"Namespace": "L", "MetricData": [_datum(Timestamp=(NOW - timedelta(days=15)).timestamp())]},
     "InvalidParameterValue"),
    ("PutMetricData", {"Namespace": "L", "MetricData": [_datum(Values=[1.0])]}, "InvalidParameterCombination"),
    ("PutMetricData", {"Namespace": "L"}, "MissingParameter"),
    ("PutMetricData", {"Namespace": "L", "MetricData": [_datum(StorageResolution=5)]}, "InvalidParameterValue"),
    ("GetMetricStatistics", {"Namespace": "L", "MetricName": "x", "StartTime": (NOW - timedelta(days=2)).timestamp(),
                             "EndTime": NOW.timestamp(), "Period": 60, "Statistics": ["Sum"]},
     "InvalidParameterCombination"),
    ("GetMetricStatistics", {"Namespace": "L", "MetricName": "x", "StartTime": NOW.timestamp() - 600,
                             "EndTime": NOW.timestamp(), "Period": 61, "Statistics": ["Sum"]}, "InvalidParameterValue"),
    ("GetMetricStatistics", {"Namespace": "L", "MetricName": "x", "StartTime": NOW.timestamp() - 600,
                             "EndTime": NOW.timestamp(), "Period": 60, "Statistics": ["Sum"],
                             "ExtendedStatistics": ["p9"]}, "InvalidParameterCombination"),
    ("GetMetricData", {"StartTime": NOW.timestamp() - 600, "EndTime": NOW.timestamp(), "MetricDataQueries": [
        {"Id": "e1", "Expression": "SUM(METRICS("}]}, "ValidationError"),
    ("DescribeAlarms", {"NextToken": "%%%"}, "InvalidNextToken"),
    ("SetAlarmState", {"AlarmName": "none", "StateValue": "OK", "StateReason": "x"}, "ResourceNotFound"),
]


@pytest.mark.parametrize("op,doc,code", OVER_LIMIT, ids=[f"{o}-{c}-{i}" for i, (o, _, c) in enumerate(OVER_LIMIT)])
def test_limits_and_bad_input_give_aws_codes(endpoint, op, doc, code):
    for call in (jsonrpc, cborrpc):
        status, headers, body = call(endpoint, op, doc)
        assert 400 <= status < 500 and error_code(status, headers, body) == code, body


def test_limits_through_boto3(endpoint):
    cw = endpoint.client()
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.put_metric_data(Namespace="L", MetricData=[_datum()] * 1001)
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException):
        cw.get_metric_statistics(Namespace="L", MetricName="x", StartTime=NOW - timedelta(days=2), EndTime=NOW,
                                 Period=60, Statistics=["Sum"])
    q = endpoint.client("query")
    with pytest.raises(q.exceptions.InvalidParameterValueException):
        q.put_metric_data(Namespace="L", MetricData=[_datum(Dimensions=[
            {"Name": f"d{i}", "Value": "v"} for i in range(31)])])


def test_oversized_body_is_413(endpoint):
    status, headers, body = jsonrpc(endpoint, "PutMetricData", {"Namespace": "L", "Pad": "x" * (1024 * 1024 + 10)})
    assert status == 413 and error_code(status, headers, body) == "RequestEntityTooLarge"


def test_query_get_with_signed_query_string(endpoint):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url=endpoint.url + "/?" + urlencode({"Action": "ListMetrics",
                                                                         "Version": "2010-08-01",
                                                                         "Namespace": "Nothing/Here"}))
    SigV4Auth(Credentials(endpoint.key_id, endpoint.secret), "monitoring", "us-east-1").add_auth(req)
    status, _, body = send(req)
    assert status == 200, body
    assert ET.fromstring(body).find(f"{XMLNS}ListMetricsResult/{XMLNS}Metrics") is not None


def test_query_decoding_of_a_full_request_is_fast(endpoint):
    """1000 datums × 3 dimensions is ~9000 form fields: decoding must be linear, not quadratic."""
    import time
    cw = endpoint.client("query")
    data = [{"MetricName": "big", "Value": float(i), "Dimensions": [{"Name": f"d{j}", "Value": str(i % 7)}
                                                                    for j in range(3)]} for i in range(1000)]
    started = time.perf_counter()
    cw.put_metric_data(Namespace="Raw/Big", MetricData=data)
    assert time.perf_counter() - started < 5
    assert len(cw.list_metrics(Namespace="Raw/Big")["Metrics"]) == 7
