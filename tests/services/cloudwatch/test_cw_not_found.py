"""What a resource that does not exist answers, per wire protocol: code, HTTP status, error type.

Source of the statuses: CloudWatch's Smithy model (aws/api-models-aws,
models/cloudwatch/service/2010-08-01/cloudwatch-2010-08-01.json). ResourceNotFound,
DashboardNotFoundError and ResourceNotFoundException each carry both
`aws.protocols#awsQueryError {httpResponseCode: 404}` — used only by the Query protocol ("The
aws.protocols#awsQueryError trait is only used when serializing operation errors using the
aws.protocols#query protocol", Smithy awsQuery protocol docs) — and `smithy.api#httpError: 404`,
which JSON 1.0 and RPC v2 CBOR use. So 404 in all three, not only in Query: the issue's "404 only
for Query/query-compatible mode" does not hold for these shapes. The two traits were read for
ConcurrentModificationException (429), DashboardInvalidInputError, InternalServiceFault (500),
InvalidFormatFault, InvalidNextToken, InvalidParameterCombination/ValueException, LimitExceeded
Exception/Fault (400) and the three not-found shapes (404): they agree in every one;
ConflictException has only httpError 409 (MissingRequiredParameterException was not read).
botocore's service-2.json keeps one `error.httpStatusCode` per shape, 404 here.

The JSON/CBOR `__type` is the shape the operation models (GetDashboard / DeleteDashboards list
DashboardNotFoundError, SetAlarmState / DeleteAlarms list ResourceNotFound) and
`x-amzn-query-error` carries the Query code (awsQueryCompatible: "Code;Fault").
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cbor2
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent))
from test_cw_protocols import cborrpc, jsonrpc  # noqa: E402

from cwharness import PROTOCOLS  # noqa: E402

MISSING_ARN = "arn:aws:cloudwatch:us-east-1:{account}:alarm:no-such-alarm"

# operation, parameters, Query code, modeled shape (JSON/CBOR __type), message (as AWS words it)
CASES = [
    ("SetAlarmState", {"AlarmName": "no-such-alarm", "StateValue": "OK", "StateReason": "x"},
     "ResourceNotFound", "ResourceNotFound", "Alarm no-such-alarm does not exist."),
    ("DeleteAlarms", {"AlarmNames": ["no-such-alarm"]},
     "ResourceNotFound", "ResourceNotFound", "The following alarms were not found: no-such-alarm"),
    ("GetDashboard", {"DashboardName": "no-such-dashboard"},
     "ResourceNotFound", "DashboardNotFoundError", "Dashboard no-such-dashboard does not exist"),
    ("DeleteDashboards", {"DashboardNames": ["no-such-dashboard"]},
     "ResourceNotFound", "DashboardNotFoundError", "Dashboards do not exist: no-such-dashboard"),
    ("ListTagsForResource", {"ResourceARN": MISSING_ARN},
     "ResourceNotFoundException", "ResourceNotFoundException", None),
]
IDS = [c[0] for c in CASES]


def snake(op: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in op).lstrip("_")


def params(doc: dict, endpoint) -> dict:
    return {k: (v.format(account=endpoint.account) if isinstance(v, str) else v) for k, v in doc.items()}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("op, doc, code, shape, message", CASES, ids=IDS)
def test_not_found_is_404_in_every_protocol(endpoint, protocol, op, doc, code, shape, message):
    cw = endpoint.client(protocol)
    with pytest.raises(ClientError) as err:
        getattr(cw, snake(op))(**params(doc, endpoint))
    r = err.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == (code, 404)
    if message is not None:
        assert r["Error"]["Message"] == message


@pytest.mark.parametrize("call", [jsonrpc, cborrpc], ids=["json", "cbor"])
@pytest.mark.parametrize("op, doc, code, shape, message", CASES, ids=IDS)
def test_not_found_names_the_modeled_shape_and_the_query_code(endpoint, call, op, doc, code, shape, message):
    status, headers, body = call(endpoint, op, params(doc, endpoint))
    parsed = json.loads(body) if call is jsonrpc else cbor2.loads(body)
    assert status == 404
    assert parsed["__type"] == f"com.amazonaws.cloudwatch#{shape}"
    assert headers["x-amzn-query-error"] == f"{code};Sender"
