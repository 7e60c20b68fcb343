"""Smithy RPC v2 CBOR: POST .../service/GraniteServiceVersion20100801/operation/<Op> (boto3's default)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

import cbor2
from botocore.model import OperationModel

from eucadb.services import bounds
from eucadb.services.cloudwatch.errors import ApiError, serialization, unknown_operation
from eucadb.services.cloudwatch.limits import MAX_DOCUMENT_DEPTH
from eucadb.services.cloudwatch.model import TARGET_PREFIX
from eucadb.services.cloudwatch.protocols import HttpRequest, HttpResponse
from eucadb.services.cloudwatch.protocols.awsjson import error_document, error_headers
from eucadb.services.cloudwatch.shapes import decode_document, to_document

MARKER = f"/service/{TARGET_PREFIX}/operation/"
HEADERS = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
DECODE_ERRORS = (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, LookupError)
# RPC v2 CBOR carries timestamps as tag 1 and only bigInteger/bigDecimal members as tags 2-4, which
# CloudWatch has none of. Every other tag cbor2 would interpret (regexes, MIME messages, sets, shared
# references, bignums into ints no member holds, …) is refused before it is built.
SEMANTIC_TAGS = (0, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)
LEAVES = (*bounds.JSON_LEAVES, bytes, datetime)


def _refuse(*_: Any) -> NoReturn:
    raise ValueError("only tag 1 (timestamps) is used by this protocol")


def load(body: bytes) -> Any:
    """The body as a document, within the protocol's bounds (depth, tags, 64-bit integers)."""
    try:
        doc = cbor2.loads(body, max_depth=MAX_DOCUMENT_DEPTH, strict_hashable_types=True, tag_hook=_refuse,
                          semantic_decoders={tag: _refuse for tag in SEMANTIC_TAGS})
    except DECODE_ERRORS as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise bounds.Malformed(f"{exc}{cause}") from None
    bounds.check_tree(doc, MAX_DOCUMENT_DEPTH, LEAVES)
    return doc


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
            doc = load(request.body) if request.body else {}
        except bounds.Malformed as exc:
            raise serialization(f"The request body is not valid CBOR: {exc}.") from None
        return decode_document(op.input_shape, doc) if op.input_shape is not None else {}

    def encode(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        body = b""
        if op.output_shape is not None:
            body = cbor2.dumps(to_document(result, epoch=False), datetime_as_timestamp=True)
        return HttpResponse(200, list(HEADERS), body)

    def error(self, err: ApiError, request_id: str) -> HttpResponse:
        body = cbor2.dumps(to_document(error_document(err), epoch=False), datetime_as_timestamp=True)
        return HttpResponse(err.status, [*HEADERS, *error_headers(err)], body)

    def unknown_operation(self, name: str) -> ApiError:
        return unknown_operation(name)
