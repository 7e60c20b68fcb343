"""Fuzz findings, kept as regressions: each request once answered 500 (or wrote half its change
before a 503); each must get a 400 and the AWS error code, in every protocol that can carry it.

Where each expected code comes from:
  - SerializationException: Smithy's malformed-request protocol tests (smithy-aws-protocol-tests,
    malformedRequests/malformed-integer.smithy, malformed-request-body.smithy) answer 400
    SerializationException for a body that does not parse and for "Underflow or overflow" of a number.
    A CBOR bignum (tag 2/3) is such a number: CloudWatch has no bigInteger/bigDecimal members.
  - InvalidParameterValue: botocore's CloudWatch model (InvalidParameterValueException, code
    InvalidParameterValue, 400) — what CloudWatch answers for a value it cannot use, e.g. "The parameter
    MetricData.member.20.Dimensions.member.4.Value must be shorter than 257 characters" (reported in
    aws/amazon-cloudwatch-agent#240). The Query protocol has no SerializationException, so a Query number
    that does not fit its member is InvalidParameterValue too.
  - InvalidNextToken: the model's error for DescribeAlarmHistory and GetMetricData (400).
  - ValidationError: the model's ValidationException (code ValidationError, 400) and its limit
    StateReasonData max 4000; AWS services word such refusals "1 validation error detected: Value …
    failed to satisfy constraint: Member must have length less than or equal to …".
  - InvalidFormat: SetAlarmState's modeled error for StateReasonData that is not usable JSON.
"""
from __future__ import annotations

import base64
import functools
import json
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import cbor2
import pytest

XMLNS = "{http://monitoring.amazonaws.com/doc/2010-08-01/}"
PROTOCOLS = ("query", "json", "cbor")
ALARM = {"AlarmName": "ok-name", "Namespace": "N", "MetricName": "m", "Statistic": "Sum", "Period": 60,
         "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold"}


def call(endpoint, protocol: str, op: str, body: bytes) -> tuple[int, str]:
    """A signed request with a raw body through the real app; (status, AWS error code or '')."""
    if protocol == "query":
        req = endpoint.signed(body, {"Content-Type": "application/x-www-form-urlencoded"})
    elif protocol == "json":
        req = endpoint.signed(body, {"Content-Type": "application/x-amz-json-1.0",
                                     "X-Amz-Target": f"GraniteServiceVersion20100801.{op}"})
    else:
        req = endpoint.signed(body, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                              path=f"/service/GraniteServiceVersion20100801/operation/{op}")
    status, headers, out = endpoint.wsgi(req)
    if status == 200:
        return status, ""
    if protocol == "query":
        return status, ET.fromstring(out).find(f"{XMLNS}Error/{XMLNS}Code").text
    return status, headers["x-amzn-query-error"].split(";")[0]


def encode(protocol: str, op: str, params: dict) -> bytes:
    """params in the protocol's own encoding; Query params are already flat `A.member.1.B` keys."""
    if protocol == "query":
        return urlencode({"Action": op, "Version": "2010-08-01", **params}).encode()
    return json.dumps(params).encode() if protocol == "json" else cbor2.dumps(params)


def assert_no_alarms(endpoint) -> None:
    """No test here creates an alarm: one that exists was half-written by a refused request."""
    assert [a["AlarmName"] for a in endpoint.client().describe_alarms()["MetricAlarms"]] == []


def token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# ---- non-ASCII digits: '²'.isdigit() is True but int('²') raises; '٣' is int 3 --------------------

@pytest.mark.parametrize("index", ["²", "٣", "１"])
def test_query_member_index_must_be_ascii_digits(endpoint, index):
    body = encode("query", "PutMetricData", {"Namespace": "N", f"MetricData.member.{index}.MetricName": "m",
                                             f"MetricData.member.{index}.Value": "1"})
    assert call(endpoint, "query", "PutMetricData", body) == (400, "InvalidParameterValue")


def test_query_integer_must_be_ascii_digits(endpoint):
    body = encode("query", "DescribeAlarms", {"MaxRecords": "٣"})
    assert call(endpoint, "query", "DescribeAlarms", body) == (400, "InvalidParameterValue")


NON_ASCII_TOKENS = [("ListMetrics", "series:²"), ("DescribeAlarmHistory", "history:²"),
                    ("GetMetricData", "gmd:².0"), ("GetMetricData", "gmd:0.²")]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("op, text", NON_ASCII_TOKENS)
def test_next_token_with_non_ascii_digits(endpoint, protocol, op, text):
    params = {"NextToken": token(text)}
    if op == "GetMetricData":
        start, end = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
        params.update({"StartTime": start, "EndTime": end} if protocol == "query" else
                      {"StartTime": 1767225600, "EndTime": 1767229200})
        query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "m"}, "Period": 60,
                                           "Stat": "Sum"}}
        if protocol == "query":
            params.update({"MetricDataQueries.member.1.Id": "q", "MetricDataQueries.member.1.MetricStat.Period": "60",
                           "MetricDataQueries.member.1.MetricStat.Stat": "Sum",
                           "MetricDataQueries.member.1.MetricStat.Metric.Namespace": "N",
                           "MetricDataQueries.member.1.MetricStat.Metric.MetricName": "m"})
        else:
            params["MetricDataQueries"] = [query]
    assert call(endpoint, protocol, op, encode(protocol, op, params)) == (400, "InvalidNextToken")


# ---- numbers no member can hold ------------------------------------------------------------------

HUGE = 10 ** 400
DATUM = b'{"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": VALUE}]}'


@pytest.mark.parametrize("protocol, op, body", [
    ("json", "PutMetricData", DATUM.replace(b"VALUE", b"1" + b"0" * 400)),
    ("json", "PutMetricData", DATUM.replace(b"VALUE", b"1e400")),
    ("json", "PutMetricAlarm", json.dumps({**ALARM, "Threshold": "T"}).replace('"T"', "1e400").encode()),
    ("json", "DescribeAlarms", b'{"MaxRecords": 1' + b"0" * 400 + b"}"),
    ("json", "PutMetricAlarm", json.dumps({**ALARM, "Threshold": float("nan")}).encode()),   # NaN: not JSON
    ("cbor", "PutMetricData", cbor2.dumps({"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": HUGE}]})),
    ("cbor", "PutMetricData", cbor2.dumps({"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": -HUGE}]})),
    ("cbor", "PutMetricAlarm", cbor2.dumps({**ALARM, "Threshold": HUGE})),
    ("cbor", "DescribeAlarms", cbor2.dumps({"MaxRecords": 2 ** 64 - 1})),    # major type 0, beyond int64
], ids=["json-int-value", "json-1e400-value", "json-1e400-threshold", "json-int-maxrecords", "json-nan-threshold",
         "cbor-tag2-value",
        "cbor-tag3-value", "cbor-tag2-threshold", "cbor-uint64-maxrecords"])
def test_numbers_out_of_range_are_serialization_errors(endpoint, protocol, op, body):
    assert call(endpoint, protocol, op, body) == (400, "SerializationException")
    assert_no_alarms(endpoint)


@pytest.mark.parametrize("protocol", ["json", "cbor"])
def test_integer_beyond_its_member_is_a_serialization_error(endpoint, protocol):
    """Period is a Smithy `integer` (32 bits): 2^40 fits a JSON/CBOR number but not the member."""
    params = {"Namespace": "N", "MetricName": "m", "StartTime": 1767225600, "EndTime": 1767229200,
              "Period": 60 * 2 ** 40, "Statistics": ["Sum"]}
    assert call(endpoint, protocol, "GetMetricStatistics",
                encode(protocol, "GetMetricStatistics", params)) == (400, "SerializationException")


def test_query_number_beyond_its_member(endpoint):
    body = encode("query", "GetMetricStatistics", {
        "Namespace": "N", "MetricName": "m", "StartTime": "2026-01-01T00:00:00Z", "EndTime": "2026-01-01T01:00:00Z",
        "Period": "6" + "0" * 400, "Statistics.member.1": "Sum"})
    assert call(endpoint, "query", "GetMetricStatistics", body) == (400, "InvalidParameterValue")


def test_cbor_threshold_infinity_is_refused_before_anything_is_stored(endpoint):
    """A CBOR double may be Infinity; an alarm cannot use it, and must not half-exist afterwards."""
    body = cbor2.dumps({**ALARM, "AlarmName": "inf-threshold", "Threshold": float("inf")})
    assert call(endpoint, "cbor", "PutMetricAlarm", body) == (400, "InvalidParameterValue")
    assert_no_alarms(endpoint)


# ---- deep nesting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("depth, code", [(5000, "ValidationError"), (1990, "InvalidFormat")])
def test_state_reason_data_nested_deep(endpoint, protocol, depth, code):
    """5000 deep is 10,000 characters (over AWS's 4000); 1990 deep fits in 4000 but not in json's stack."""
    params = {"AlarmName": "nope", "StateValue": "OK", "StateReason": "r",
              "StateReasonData": "[" * depth + "]" * depth}
    assert call(endpoint, protocol, "SetAlarmState", encode(protocol, "SetAlarmState", params)) == (400, code)


@pytest.mark.parametrize("protocol, body", [
    ("json", b"[" * 100_000),
    ("json", b'{"Namespace": ' + b"[" * 100 + b"]" * 100 + b"}"),
    ("cbor", b"\x81" * 100_000 + b"\x00"),
    ("cbor", cbor2.dumps({"Namespace": functools.reduce(lambda doc, _: [doc], range(40), "x")})),
], ids=["json-100000", "json-100", "cbor-100000", "cbor-41"])
def test_deeply_nested_bodies(endpoint, protocol, body):
    assert call(endpoint, protocol, "PutMetricData", body) == (400, "SerializationException")


def test_cbor_tags_other_than_timestamps_are_refused(endpoint):
    """RPC v2 CBOR timestamps are tag 1; nothing in CloudWatch is a regex (35), a MIME message (36), …"""
    for tag, value in ((35, "(a+)+$"), (36, "Subject: x\n\nbody"), (258, [1, 2]), (99, 1), (4, [-1, 15])):
        body = cbor2.dumps({"Namespace": cbor2.CBORTag(tag, value), "MetricData": []})
        assert call(endpoint, "cbor", "PutMetricData", body) == (400, "SerializationException"), tag


# ---- NUL, which PostgreSQL text refuses ----------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("op, params", [
    ("PutMetricAlarm", {**ALARM, "AlarmName": "a\x00b"}),
    ("PutMetricAlarm", {**ALARM, "AlarmName": "nul-description", "AlarmDescription": "x\x00"}),
    ("DescribeAlarmHistory", {"AlarmName": "\x00"}),
    ("PutMetricData", {"Namespace": "N\x00", "MetricData": [{"MetricName": "m", "Value": 1.0}]}),
], ids=["alarm-name", "alarm-description", "history-name", "namespace"])
def test_nul_in_strings(endpoint, protocol, op, params):
    if protocol == "query":
        params = flat_query(params)
    assert call(endpoint, protocol, op, encode(protocol, op, params)) == (400, "InvalidParameterValue")
    assert_no_alarms(endpoint)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nul_in_next_token(endpoint, protocol):
    body = encode(protocol, "DescribeAlarms", {"NextToken": token("alarm:\x00")})
    assert call(endpoint, protocol, "DescribeAlarms", body) == (400, "InvalidNextToken")


def flat_query(params: dict) -> dict:
    """The few nested members these tests send, as Query keys."""
    out = {}
    for key, value in params.items():
        if isinstance(value, list):
            for i, item in enumerate(value, 1):
                for k, v in item.items():
                    out[f"{key}.member.{i}.{k}"] = str(v)
        else:
            out[key] = str(value)
    return out


def test_depth_bound_leaves_room_for_every_real_request():
    """MAX_DOCUMENT_DEPTH must exceed the deepest input the model allows (else valid requests fail)."""
    from eucadb.services.cloudwatch.limits import MAX_DOCUMENT_DEPTH
    from eucadb.services.cloudwatch.model import service_model

    def depth(shape, seen: frozenset = frozenset()) -> int:
        if shape.type_name not in ("structure", "list", "map") or shape.name in seen:
            return 0
        children = {"structure": lambda: shape.members.values(), "list": lambda: [shape.member],
                    "map": lambda: [shape.value]}[shape.type_name]()
        return 1 + max((depth(c, seen | {shape.name}) for c in children), default=0)

    model = service_model()
    deepest = max(depth(model.operation_model(op).input_shape) for op in model.operation_names
                  if model.operation_model(op).input_shape is not None)
    assert MAX_DOCUMENT_DEPTH >= 4 * deepest   # 8 with botocore 1.44
