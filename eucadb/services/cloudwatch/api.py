"""The CloudWatch WSGI endpoint: gate, body limits, SigV4, protocol decode, dispatch, encode.

A handler runs on the service as the signing key's account sees it (CloudWatch.for_account).

Every outcome is an HTTP response in the client's protocol: bad input is a 4xx with an AWS code, a
disabled service or unreachable storage a 503 ServiceUnavailable, and an unexpected fault a 500 with a
generic message (the traceback goes to the log, never into the body).
"""
from __future__ import annotations

import logging
import uuid
import zlib
from typing import Callable, Iterable
from urllib.parse import quote

from eucadb.logs import REFUSALS, RateLimitedLog
from eucadb.services.cloudwatch import limits, sigv4
from eucadb.services.cloudwatch.errors import STORAGE_ERRORS, ApiError, unavailable
from eucadb.services.cloudwatch.model import operation
from eucadb.services.cloudwatch.operations import OPERATIONS
from eucadb.services.cloudwatch.protocols import REQUEST_ID_HEADER, HttpRequest, HttpResponse, WireProtocol, detect
from eucadb.services.cloudwatch.service import CloudWatch

log = logging.getLogger(__name__)
MOUNT = "/services/CloudWatch"
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           413: "Request Entity Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def read_request(environ: dict, mount: str) -> HttpRequest:
    """The request as the service sees it; the body is read up to one byte past the limit."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    script, path = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "/")
    full = quote(script + path, safe="/-_.~")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(min(max(length, 0), limits.MAX_BODY_BYTES + 1)) if length else b""
    return HttpRequest(method=environ.get("REQUEST_METHOD", "GET"), path=(script + path)[len(mount):] or "/",
                       query=environ.get("QUERY_STRING", ""), headers=headers, body=body, full_path=full,
                       host=environ.get("HTTP_HOST", ""))


def inflate(request: HttpRequest) -> None:
    """gzip bodies (botocore compresses large PutMetricData requests) → plain, bounded."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return
    if encoding != "gzip":
        raise ApiError("InvalidParameterValue", f"Content-Encoding {encoding!r} is not supported (gzip only).")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(request.body, limits.MAX_INFLATED_BYTES)
    except zlib.error:
        raise ApiError("InvalidParameterValue", "The request body is not valid gzip.") from None
    if inflater.unconsumed_tail:
        raise ApiError("RequestEntityTooLarge", "The decompressed request body is too large.", 413)
    request.body = body


class CloudWatchApi:
    def __init__(self, service: CloudWatch, mount: str = MOUNT, refusals: RateLimitedLog = REFUSALS):
        self.service, self.mount, self.refusals = service, mount, refusals

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        request = read_request(environ, self.mount)
        protocol = detect(request)
        try:
            response = self.handle(protocol, request, request_id)
        except ApiError as err:
            if err.status == 503:   # a disabled service: counted, one line a minute (eucadb/logs.py)
                self.refusals.refused(f"cloudwatch {err.code}: {err.message}")
            response = protocol.error(err, request_id)
        except STORAGE_ERRORS as exc:
            self.refusals.refused(f"cloudwatch storage unavailable: {exc}")
            response = protocol.error(unavailable("The service is temporarily unavailable; retry later."),
                                      request_id)
        except Exception:  # noqa: BLE001 — the last line of defence: log it, answer a generic 500
            log.exception("cloudwatch request %s failed", request_id)
            response = protocol.error(ApiError("InternalFailure", "The request processing has failed "
                                               "because of an unknown error.", 500, sender=False), request_id)
        return self._respond(response, start_response, request_id)

    def unavailable(self, environ: dict, start_response: Callable, message: str) -> Iterable[bytes]:
        """503 ServiceUnavailable in the client's own protocol without doing any work (load shedding)."""
        protocol = detect(read_request(environ, self.mount))
        request_id = str(uuid.uuid4())
        return self._respond(protocol.error(unavailable(message), request_id), start_response, request_id)

    @staticmethod
    def _respond(response: HttpResponse, start_response: Callable, request_id: str) -> list[bytes]:
        headers = [*response.headers, (REQUEST_ID_HEADER, request_id), ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {REASONS.get(response.status, 'Error')}", headers)
        return [response.body]

    def handle(self, protocol: WireProtocol, request: HttpRequest, request_id: str) -> HttpResponse:
        if not self.service.is_enabled():
            raise unavailable("The CloudWatch service is not enabled; see `eucadb status`.")
        if len(request.body) > limits.MAX_BODY_BYTES:
            raise ApiError("RequestEntityTooLarge", "Request size exceeds the limit of 1048576 bytes.", 413)
        if request.method not in ("POST", "GET"):
            raise ApiError("InvalidAction", f"Method {request.method} is not supported.", 400)
        account = sigv4.caller_account(request, self.service.keys, self.service.region, self.service.clock())
        inflate(request)
        name = protocol.operation_name(request)
        handler = OPERATIONS.get(name)
        if handler is None:
            raise protocol.unknown_operation(name)
        op = operation(name)
        result = handler(self.service.for_account(account), protocol.decode(request, op))
        return protocol.encode(op, result, request_id)
