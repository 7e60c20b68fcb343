"""Fuzzed requests in each protocol (signed, so they reach the decoders): never a 5xx, never a
traceback, and the body is always a well-formed error or result in the request's protocol."""
from __future__ import annotations

import base64
import functools
import json
import os
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import cbor2
from hypothesis import HealthCheck, given, settings, strategies as st

from eucadb.services.cloudwatch.operations import OPERATIONS

OPS = st.sampled_from([*OPERATIONS, "Bogus"])
FIELDS = ["Namespace", "MetricName", "MetricData", "Dimensions", "Name", "Value", "Values", "Counts",
          "StatisticValues", "SampleCount", "Sum", "Minimum", "Maximum", "Timestamp", "Unit", "StorageResolution",
          "StartTime", "EndTime", "Period", "Statistics", "ExtendedStatistics", "MetricDataQueries", "Id",
          "MetricStat", "Metric", "Stat", "NextToken", "AlarmName", "AlarmNames", "StateValue", "StateReason",
          "Threshold", "EvaluationPeriods", "ComparisonOperator", "MaxRecords", "Expression", "StateReasonData",
          "AlarmDescription"]
# What fuzzing found (test_cw_bad_input.py keeps each case): digits that are not ASCII, numbers no member
# holds, NUL (PostgreSQL text refuses it), JSON nested past the interpreter's stack (StateReasonData).
ODD_DIGITS = st.text(alphabet="0123456789²٣１\x00:._-", max_size=8)
NESTED_JSON = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)
TOKENS = st.builds(lambda kind, value: base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode(),
                   st.sampled_from(["series", "history", "gmd", "alarm", "x"]), ODD_DIGITS)
SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["Sum", "p99", "p٩٩", "Count", "OK", "ALARM", "x", "AWS/EC2"])
           | st.integers(-10 ** 400, 10 ** 400) | st.sampled_from([2 ** 31, 2 ** 63, 2 ** 64 - 1, -2 ** 64])
           | ODD_DIGITS | NESTED_JSON | TOKENS)
DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5), max_leaves=25)
DEEP = st.integers(20, 900).map(lambda n: functools.reduce(lambda doc, _: [doc], range(n), "x"))
TOP = st.dictionaries(st.sampled_from(FIELDS), DOCS | DEEP, max_size=6)
FUZZ = settings(max_examples=int(os.environ.get("CW_FUZZ_EXAMPLES", "120")), deadline=None, suppress_health_check=list(HealthCheck))


def check(endpoint, req, parse) -> None:
    status, headers, body = endpoint.wsgi(req)
    assert status < 500, (status, body)
    assert b"Traceback" not in body and b'File "' not in body
    parse(body)


def parse_json(body: bytes) -> None:
    assert isinstance(json.loads(body), dict)


def parse_cbor(body: bytes) -> None:
    assert body == b"" or isinstance(cbor2.loads(body), dict)


@FUZZ
@given(op=OPS, doc=TOP | DOCS, raw=st.none() | st.binary(max_size=64))
def test_json_decoder_fuzz(endpoint, op, doc, raw):
    body = raw if raw is not None else json.dumps(doc, allow_nan=True).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"GraniteServiceVersion20100801.{op}"}
    check(endpoint, endpoint.signed(body, headers), parse_json)


CBOR_TAGS = st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 3, 4, 5, 30, 35, 36, 37, 258, 260, 99, 55799]), SCALARS)


@FUZZ
@given(op=OPS, doc=TOP | DOCS | st.dictionaries(st.sampled_from(FIELDS), CBOR_TAGS, max_size=3),
       raw=st.none() | st.binary(max_size=64))
def test_cbor_decoder_fuzz(endpoint, op, doc, raw):
    try:
        body = raw if raw is not None else cbor2.dumps(doc)
    except (ValueError, TypeError, cbor2.CBOREncodeError):   # a tag whose value cbor2 itself cannot write
        return
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    req = endpoint.signed(body, headers, path=f"/service/GraniteServiceVersion20100801/operation/{op}")
    check(endpoint, req, parse_cbor)


INDEXES = st.integers(-1, 10 ** 9).map(str) | ODD_DIGITS
QUERY_KEYS = st.sampled_from(FIELDS) | st.builds(
    lambda a, n, b: f"{a}.member.{n}.{b}", st.sampled_from(FIELDS), INDEXES, st.sampled_from(FIELDS)) \
    | st.builds(lambda a, n: f"{a}.member.{n}", st.sampled_from(FIELDS), INDEXES) | st.text(max_size=10)


@FUZZ
@given(op=OPS, params=st.dictionaries(QUERY_KEYS, st.text(max_size=12) | st.sampled_from(
    ["1", "-1", "1e400", "nan", "2026-01-01T00:00:00Z", "true", "", "6" + "0" * 400]) | ODD_DIGITS | NESTED_JSON
    | TOKENS, max_size=10), raw=st.none() | st.binary(max_size=64))
def test_query_decoder_fuzz(endpoint, op, params, raw):
    body = raw if raw is not None else urlencode({"Action": op, **params}).encode()
    req = endpoint.signed(body, {"Content-Type": "application/x-www-form-urlencoded"})
    check(endpoint, req, lambda b: ET.fromstring(b))


HEADER_VALUES = st.text(max_size=80) | st.sampled_from([
    "AWS4-HMAC-SHA256 Credential=AKEU/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host;x-amz-date, "
    "Signature=" + "0" * 64, "gzip", "identity", "deflate", "GraniteServiceVersion20100801.ListMetrics",
    "rpc-v2-cbor", "20260101T000000Z"])


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(["Authorization", "X-Amz-Date", "Content-Encoding", "X-Amz-Target",
                                                "smithy-protocol", "X-Amz-Content-SHA256", "Content-Type"]),
                               HEADER_VALUES, max_size=5),
       body=st.binary(max_size=64), path=st.sampled_from(["/", "/service/x/operation/y", "/a/b"]), sign=st.booleans())
def test_header_and_auth_fuzz(endpoint, headers, body, path, sign):
    clean = {k: v.replace("\n", " ").replace("\r", " ") for k, v in headers.items()}
    req = endpoint.signed(body, {}, path=path)
    if not sign:
        del req.headers["Authorization"]
    for name, value in clean.items():
        del req.headers[name]
        req.headers[name] = value
    status, _, out = endpoint.wsgi(req)
    assert status < 500, (status, out)
    assert b"Traceback" not in out


def test_lone_surrogates_and_control_characters(endpoint):
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData"}
    body = b'{"Namespace": "\\ud800", "MetricData": [{"MetricName": "x", "Value": 1}]}'
    status, _, out = endpoint.wsgi(endpoint.signed(body, headers))
    assert status == 400 and json.loads(out)["__type"].endswith("InvalidParameterValueException")
    status, _, out = endpoint.wsgi(endpoint.signed(b"Action=Put%00Metric%01Data", {
        "Content-Type": "application/x-www-form-urlencoded"}))
    assert status == 400 and ET.fromstring(out)


# ---- one odd value in an otherwise valid request: reaches the handlers and the databases ----------------

T0 = 1767225600   # 2026-01-01T00:00:00Z
VALID = {
    "PutMetricData": {"Namespace": "F", "MetricData": [{"MetricName": "m", "Value": 1.0, "Dimensions": [
        {"Name": "d", "Value": "v"}]}]},
    "GetMetricStatistics": {"Namespace": "F", "MetricName": "m", "StartTime": T0, "EndTime": T0 + 3600,
                            "Period": 60, "Statistics": ["Sum"]},
    "GetMetricData": {"StartTime": T0, "EndTime": T0 + 3600, "MetricDataQueries": [{"Id": "q", "MetricStat": {
        "Metric": {"Namespace": "F", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}}]},
    "ListMetrics": {"Namespace": "F"},
    "PutMetricAlarm": {"AlarmName": "fuzz", "Namespace": "F", "MetricName": "m", "Statistic": "Sum", "Period": 60,
                       "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold"},
    "DescribeAlarms": {"MaxRecords": 10},
    "DeleteAlarms": {"AlarmNames": ["fuzz"]},
    "SetAlarmState": {"AlarmName": "fuzz", "StateValue": "OK", "StateReason": "r", "StateReasonData": "{}"},
    "DescribeAlarmHistory": {"AlarmName": "fuzz", "MaxRecords": 10},
}
ODD_TEXT = ODD_DIGITS | NESTED_JSON | TOKENS | st.sampled_from(["a\x00b", "\x00", "p٩٩", "٣"])
ODD_INT = st.integers(-10 ** 400, 10 ** 400) | st.sampled_from([2 ** 31, 2 ** 63, 2 ** 64 - 1, -2 ** 64, 0, -1])
ODD_BY_TYPE = {"string": ODD_TEXT, "integer": ODD_INT, "long": ODD_INT, "timestamp": ODD_INT,
               "double": ODD_INT | st.sampled_from([float("inf"), float("-inf"), float("nan")]), "boolean": st.none()}


def member_paths(shape, doc, path=()):
    """(path, shape) of every member of every structure present in doc (lists: their first element)."""
    for name, member in shape.members.items():
        yield path + (name,), member
        value = doc.get(name)
        if member.type_name == "structure" and isinstance(value, dict):
            yield from member_paths(member, value, path + (name,))
        elif member.type_name == "list" and value and member.member.type_name == "structure":
            yield from member_paths(member.member, value[0], path + (name, 0))


@st.composite
def one_odd_value(draw):
    from copy import deepcopy
    from eucadb.services.cloudwatch.model import operation
    op = draw(st.sampled_from(sorted(VALID)))
    shape = operation(op).input_shape
    doc = deepcopy(VALID[op])
    path, member = draw(st.sampled_from(list(member_paths(shape, doc))))
    kind = member.member.type_name if member.type_name == "list" else member.type_name
    value = draw(ODD_BY_TYPE.get(kind, ODD_TEXT))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = [value] if member.type_name == "list" else value
    return op, shape, doc


def flatten(shape, value, prefix: str = "") -> dict:
    """A document as AWS Query parameters (`A.member.1.B`), timestamps as ISO 8601."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: v for name, member in shape.members.items() if name in value
                for k, v in flatten(member, value[name], f"{prefix}.{name}" if prefix else name).items()}
    if shape.type_name == "list" and isinstance(value, list):
        return {k: v for i, item in enumerate(value, 1)
                for k, v in flatten(shape.member, item, f"{prefix}.member.{i}").items()}
    if shape.type_name == "timestamp" and isinstance(value, int) and abs(value) < 2 ** 40:
        from datetime import datetime, timezone
        return {prefix: datetime.fromtimestamp(value, timezone.utc).isoformat()}
    return {prefix: str(value)}


@FUZZ
@given(case=one_odd_value(), protocol=st.sampled_from(["query", "json", "cbor"]))
def test_one_odd_value_in_a_valid_request(endpoint, case, protocol):
    op, shape, doc = case
    if protocol == "query":
        req = endpoint.signed(urlencode({"Action": op, "Version": "2010-08-01", **flatten(shape, doc)}).encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
        check(endpoint, req, lambda b: ET.fromstring(b))
    elif protocol == "json":
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"GraniteServiceVersion20100801.{op}"}
        check(endpoint, endpoint.signed(json.dumps(doc).encode(), headers), parse_json)
    else:
        req = endpoint.signed(cbor2.dumps(doc), {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                              path=f"/service/GraniteServiceVersion20100801/operation/{op}")
        check(endpoint, req, parse_cbor)
