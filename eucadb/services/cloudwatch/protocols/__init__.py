"""The three wire protocols CloudWatch clients speak, behind one small interface (docs/architecture.md §9).

Detection looks only at the path and headers, so even a request whose body cannot be read is answered
in the client's own format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.model import OperationModel, Shape

from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.model import error_shape_by_code, service_model


@dataclass
class HttpRequest:
    """What the service needs of one HTTP request; `path` is relative to the service mount."""

    method: str
    path: str
    query: str
    headers: dict[str, str]          # lower-case names
    body: bytes = b""
    full_path: str = ""              # as signed by the client
    host: str = ""


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class WireProtocol(Protocol):
    name: str

    def matches(self, request: HttpRequest) -> bool: ...

    def operation_name(self, request: HttpRequest) -> str: ...

    def decode(self, request: HttpRequest, op: OperationModel) -> dict[str, Any]: ...

    def encode(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse: ...

    def error(self, err: ApiError, request_id: str) -> HttpResponse: ...

    def unknown_operation(self, name: str) -> ApiError: ...


def detect(request: HttpRequest) -> WireProtocol:
    from eucadb.services.cloudwatch.protocols.awsjson import AwsJson
    from eucadb.services.cloudwatch.protocols.cbor import RpcV2Cbor
    from eucadb.services.cloudwatch.protocols.query import AwsQuery
    for proto in (RpcV2Cbor(), AwsJson()):
        if proto.matches(request):
            return proto
    return AwsQuery()


REQUEST_ID_HEADER = "x-amzn-RequestId"   # as AWS spells it, on every response of every protocol


def error_shape(err: ApiError) -> Shape | None:
    """The modeled error shape of an error code (for its members besides the message)."""
    name = err.shape or error_shape_by_code().get(err.code)
    return service_model().shape_for(name) if name else None


def query_error_header(err: ApiError) -> tuple[str, str]:
    """awsQueryCompatible: lets JSON/CBOR clients recover the Query error code (botocore reads it)."""
    return ("x-amzn-query-error", f"{err.code};{'Sender' if err.sender else 'Receiver'}")
