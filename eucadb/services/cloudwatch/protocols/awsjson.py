"""AWS JSON 1.0: `X-Amz-Target: GraniteServiceVersion20100801.<Op>`, JSON body both ways."""
from __future__ import annotations

import json
from typing import Any

from botocore.model import OperationModel

from eucadb.services import bounds
from eucadb.services.cloudwatch.errors import ApiError, serialization, unknown_operation
from eucadb.services.cloudwatch.limits import MAX_DOCUMENT_DEPTH
from eucadb.services.cloudwatch.model import SHAPE_NAMESPACE, TARGET_PREFIX, error_shape_by_code
from eucadb.services.cloudwatch.protocols import HttpRequest, HttpResponse, query_error_header
from eucadb.services.cloudwatch.shapes import decode_document, to_document

CONTENT_TYPE = ("Content-Type", "application/x-amz-json-1.0")


# Errors raised by AWS's request framework (Coral) before the service sees the request: their type is
# namespaced by the framework and they carry no awsQueryCompatible code.
FRAMEWORK_ERRORS = {"UnknownOperationException": "com.amazon.coral.service"}


def error_type(err: ApiError) -> str:
    if err.code in FRAMEWORK_ERRORS:
        return f"{FRAMEWORK_ERRORS[err.code]}#{err.code}"
    shape = err.shape or error_shape_by_code().get(err.code)
    return f"{SHAPE_NAMESPACE}#{shape}" if shape else err.code


def error_document(err: ApiError) -> dict[str, Any]:
    return {"__type": error_type(err), "message": err.message, **err.details}


def error_headers(err: ApiError) -> list[tuple[str, str]]:
    return [] if err.code in FRAMEWORK_ERRORS else [query_error_header(err)]


class AwsJson:
    name = "json"

    def matches(self, request: HttpRequest) -> bool:
        return "x-amz-target" in request.headers

    def operation_name(self, request: HttpRequest) -> str:
        prefix, _, op = request.headers["x-amz-target"].partition(".")
        if prefix != TARGET_PREFIX or not op:
            raise ApiError("UnknownOperationException", "X-Amz-Target does not name a CloudWatch operation.")
        return op

    def decode(self, request: HttpRequest, op: OperationModel) -> dict[str, Any]:
        try:
            doc = bounds.load_json(request.body, MAX_DOCUMENT_DEPTH) if request.body.strip() else {}
        except bounds.Malformed as exc:
            raise serialization(f"The request body is not valid JSON: {exc}.") from None
        return decode_document(op.input_shape, doc) if op.input_shape is not None else {}

    def encode(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        body = json.dumps(to_document(result, epoch=True)).encode() if op.output_shape is not None else b"{}"
        return HttpResponse(200, [CONTENT_TYPE], body)

    def error(self, err: ApiError, request_id: str) -> HttpResponse:
        body = json.dumps(to_document(error_document(err), epoch=True)).encode()
        return HttpResponse(err.status, [CONTENT_TYPE, *error_headers(err)], body)

    def unknown_operation(self, name: str) -> ApiError:
        return unknown_operation(name)
