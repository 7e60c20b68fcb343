"""Fuzzed requests in each protocol (signed, so they reach the decoders): never a 5xx, never a
traceback, and the body is always a well-formed error or result in the request's protocol."""
from __future__ import annotations

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
          "Threshold", "EvaluationPeriods", "ComparisonOperator", "MaxRecords", "Expression"]
SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["Sum", "p99", "Count", "OK", "ALARM", "x", "AWS/EC2"]))
DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5), max_leaves=25)
TOP = st.dictionaries(st.sampled_from(FIELDS), DOCS, max_size=6)
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


@FUZZ
@given(op=OPS, doc=TOP | DOCS, raw=st.none() | st.binary(max_size=64))
def test_cbor_decoder_fuzz(endpoint, op, doc, raw):
    body = raw if raw is not None else cbor2.dumps(doc)
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    req = endpoint.signed(body, headers, path=f"/service/GraniteServiceVersion20100801/operation/{op}")
    check(endpoint, req, parse_cbor)


QUERY_KEYS = st.sampled_from(FIELDS) | st.builds(
    lambda a, n, b: f"{a}.member.{n}.{b}", st.sampled_from(FIELDS), st.integers(-1, 10 ** 9), st.sampled_from(FIELDS)) \
    | st.builds(lambda a, n: f"{a}.member.{n}", st.sampled_from(FIELDS), st.integers(0, 3)) | st.text(max_size=10)


@FUZZ
@given(op=OPS, params=st.dictionaries(QUERY_KEYS, st.text(max_size=12) | st.sampled_from(
    ["1", "-1", "1e400", "nan", "2026-01-01T00:00:00Z", "true", ""]), max_size=10), raw=st.none() | st.binary(max_size=64))
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
