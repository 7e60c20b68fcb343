"""HTTP ingestion and report API of Reporting, mounted by `eucadb serve` at /services/Reporting.

  POST /services/Reporting/events   JSON list of events → 200 {"recorded": n}
  GET  /services/Reporting/usage?start=ISO&end=ISO[&account=A][&format=json|csv|html]   (streamed)

Errors are JSON {"error": {"code", "message"}}: 400 bad input, 403 not loopback, 404/405, 411/413 body,
503 while the service is not ENABLED or its database fails. A report is sent as it is computed (no
Content-Length; chunked), so one over all time never sits in memory; a database failure after its
first chunk can only cut the response short, which HTTP clients see as an incomplete body.
Authentication today is "loopback only"
(the caller runs on this host); SigV4 with eucadb access keys belongs to the CloudWatch work.
"""
from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qs

from eucadb.errors import DatabaseError, ServiceUnavailable, UserError
from eucadb.services import bounds
from eucadb.services.reporting.events import check_text, parse_events, parse_time
from eucadb.services.reporting.render import STREAMS, report_head
from eucadb.services.reporting.service import ReportingService
from eucadb.states import StateGate

log = logging.getLogger(__name__)
PREFIX = "/services/Reporting"
MAX_BODY = 8 * 1024 * 1024
MAX_DEPTH = 8            # a valid body nests 3 deep: list → event → attributes
CHUNK = 64 * 1024        # bytes per write of a streamed report
Body = bytes | Iterator[bytes]
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


class HttpError(Exception):
    """An answer other than 200, with the status line, an error code and one clear message."""

    def __init__(self, status: str, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _is_loopback(addr: str | None) -> bool:
    try:
        return ipaddress.ip_address((addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


class ReportingApi:
    """A WSGI application; works whether the router passes the full path or the part after PREFIX."""

    def __init__(self, service: ReportingService, max_body: int = MAX_BODY):
        self.service, self.max_body = service, max_body
        self.routes: Mapping[tuple[str, str], Callable[[dict], tuple[str, Body]]] = {
            ("POST", "/events"): self.post_events, ("GET", "/usage"): self.get_usage}

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        rest: Iterator[bytes] | None = None
        try:
            ctype, body = self._dispatch(environ)
            if not isinstance(body, bytes):   # a stream: its first chunk runs the query, so its errors
                rest, body = body, next(body, b"")   # are still answered below; the rest follows
            status = "200 OK"
        except HttpError as err:
            status, ctype, body = err.status, "application/json", _error_body(err.code, err.message)
        except UserError as exc:
            status, ctype, body = "400 Bad Request", "application/json", _error_body("InvalidParameterValue", str(exc))
        except (ServiceUnavailable, DatabaseError) as exc:
            log.warning("reporting %s: %s", environ.get("PATH_INFO"), exc)
            status, ctype, body = ("503 Service Unavailable", "application/json",
                                   _error_body("ServiceUnavailable", str(exc)))
        if rest is None:
            return _respond(start_response, status, ctype, body)
        start_response(status, [("Content-Type", ctype), ("Cache-Control", "no-store")])
        return _send(body, rest, environ.get("PATH_INFO"))

    def unavailable(self, environ: dict, start_response, message: str) -> Iterable[bytes]:
        """503 without doing any work (load shedding by the server in front)."""
        return _respond(start_response, "503 Service Unavailable", "application/json",
                        _error_body("ServiceUnavailable", message))

    def _dispatch(self, environ: dict) -> tuple[str, Body]:
        if not _is_loopback(environ.get("REMOTE_ADDR")):
            raise HttpError("403 Forbidden", "AccessDenied", "the Reporting API accepts loopback clients only")
        path = environ.get("PATH_INFO", "") or ""
        if path.startswith(PREFIX):
            path = path[len(PREFIX):]
        path = path.rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        handler = self.routes.get((method, path))
        if handler is None:
            if any(p == path for _, p in self.routes):
                raise HttpError("405 Method Not Allowed", "MethodNotAllowed", f"{method} is not allowed on {path}")
            raise HttpError("404 Not Found", "NotFound", f"no Reporting resource {path or '/'}")
        return handler(environ)

    def post_events(self, environ: dict) -> tuple[str, Body]:
        self.service.require_enabled()      # 503 before reading a body we could not store
        try:
            length = int(environ.get("CONTENT_LENGTH") or "-1")
        except ValueError:
            length = -1
        if length < 0:
            raise HttpError("411 Length Required", "MissingParameter", "a Content-Length header is required")
        if length > self.max_body:
            raise HttpError("413 Payload Too Large", "LimitExceeded",
                            f"body of {length} bytes exceeds the limit of {self.max_body}")
        raw = environ["wsgi.input"].read(length)
        try:
            docs = bounds.load_json(raw, MAX_DEPTH)
        except bounds.Malformed as exc:
            raise UserError(f"the body is not valid JSON: {exc}") from None
        recorded = self.service.record(parse_events(docs))
        return "application/json", json.dumps({"recorded": recorded}).encode()

    def get_usage(self, environ: dict) -> tuple[str, Body]:
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        unknown = sorted(set(query) - {"start", "end", "account", "format"})
        if unknown:
            raise UserError(f"unknown parameter(s) {', '.join(unknown)}; allowed: start, end, account, format")
        for name in ("start", "end"):
            if not query.get(name):
                raise UserError(f"parameter {name} is required (ISO 8601, e.g. 2026-01-31T00:00:00Z)")
        fmt = query.get("format") or "json"
        if fmt not in STREAMS:
            raise UserError(f"format={fmt!r} is not one of {', '.join(STREAMS)}")
        start, end = parse_time(query["start"], "start"), parse_time(query["end"], "end")
        account = check_text("account", query["account"]) if query.get("account") else None
        rows = (r.as_dict() for r in self.service.usage_rows(start, end, account))
        return CONTENT_TYPES[fmt], _chunks(STREAMS[fmt](report_head(start, end, account), rows))


def _chunks(pieces: Iterable[str], size: int = CHUNK) -> Iterator[bytes]:
    """Text pieces (a row or so each) joined into writes of about `size` bytes."""
    buffer: list[str] = []
    filled = 0
    for piece in pieces:
        buffer.append(piece)
        filled += len(piece)
        if filled >= size:
            yield "".join(buffer).encode()
            buffer, filled = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _send(first: bytes, rest: Iterator[bytes], path: str | None) -> Iterator[bytes]:
    """The response body; `yield from` hands the server's close() on to the stream (and its cursor)."""
    yield first
    try:
        yield from rest
    except (ServiceUnavailable, DatabaseError) as exc:
        log.warning("reporting %s cut short: %s", path, exc)
        raise


def _respond(start_response, status: str, ctype: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


def _error_body(code: str, message: str) -> bytes:
    doc: dict[str, Any] = {"error": {"code": code, "message": message}}
    return json.dumps(doc).encode()


def for_loop(loop) -> ReportingApi:
    """The API as `eucadb serve` mounts it: pools and service state from the bootstrapper."""
    return ReportingApi(ReportingService(loop.pools, StateGate(loop.services.states, "reporting").state))
