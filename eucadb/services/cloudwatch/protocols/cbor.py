"""Smithy RPC v2 CBOR: POST .../service/GraniteServiceVersion20100801/operation/<Op> (boto3's default)."""
from __future__ import annotations

from typing import Any

import cbor2
from botocore.model import OperationModel

from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.model import TARGET_PREFIX
from eucadb.services.cloudwatch.protocols import HttpRequest, HttpResponse, query_error_header
from eucadb.services.cloudwatch.protocols.awsjson import error_type
from eucadb.services.cloudwatch.shapes import from_document, to_document

MARKER = f"/service/{TARGET_PREFIX}/operation/"
HEADERS = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
DECODE_ERRORS = (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, LookupError)


class RpcV2Cbor:
    name = "rpc-v2-cbor"

    def matches(self, request: HttpRequest) -> bool:
        return MARKER in request.path or request.headers.get("smithy-protocol") == "rpc-v2-cbor"

    def operation_name(self, request: HttpRequest) -> str:
        _, marker, op = request.path.partition(MARKER)
        if not marker or not op or "/" in op:
            raise ApiError("UnknownOperationException", f"Path must be {MARKER}<Operation>.", 404)
        return op

    def decode(self, request: HttpRequest, op: OperationModel) -> dict[str, Any]:
        try:
            doc = cbor2.loads(request.body) if request.body else {}
        except DECODE_ERRORS:
            raise ApiError("SerializationException", "The request body is not valid CBOR.") from None
        return from_document(op.input_shape, doc) if op.input_shape is not None else {}

    def encode(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        body = b""
        if op.output_shape is not None:
            body = cbor2.dumps(to_document(result, epoch=False), datetime_as_timestamp=True)
        return HttpResponse(200, [*HEADERS, ("x-amzn-RequestId", request_id)], body)

    def error(self, err: ApiError, request_id: str) -> HttpResponse:
        body = cbor2.dumps({"__type": error_type(err), "message": err.message})
        return HttpResponse(err.status, [*HEADERS, ("x-amzn-RequestId", request_id), query_error_header(err)], body)
