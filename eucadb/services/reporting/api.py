"""HTTP ingestion and report API of Reporting, mounted by `eucadb serve` at /services/Reporting.

  POST /services/Reporting/events   JSON list of events → 200 {"recorded": n}
  GET  /services/Reporting/usage?start=ISO&end=ISO[&account=A][&format=json|csv|html]   (streamed)

Every request is SigV4-signed with an eucadb access key (`eucadb credentials create`), credential
scope service `reporting` and the server's region (`serve.region`). A key acts for its own account:
it writes events only for that account (one event of another account refuses the whole batch, 403
AccessDenied, nothing written) and reads only that account's usage (no `account` = its own). An admin
key (`--admin`) reads every account and writes any: the cloud's components report for many accounts.
The signature is the access control, so the API answers any address it listens on (serve over TLS
when that is not loopback: `serve.tls`).

Errors are JSON {"error": {"code", "message"}}: 400 bad input, 403 unsigned / badly signed / another
account, 404/405, 411/413 body, 503 while the service is not ENABLED or its database fails. A report
is sent as it is computed (no Content-Length; chunked), so one over all time never sits in memory; a
database failure after its first chunk can only cut the response short, which HTTP clients see as an
incomplete body.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qs, quote

from eucadb.errors import DatabaseError, ServiceUnavailable, UserError
from eucadb.logs import REFUSALS, RateLimitedLog
from eucadb.services import auth, bounds
from eucadb.services.keys import AccessKeys, KeyRecord
from eucadb.services.reporting.events import check_text, parse_events, parse_time
from eucadb.services.reporting.render import STREAMS, report_head
from eucadb.services.reporting.service import ReportingService
from eucadb.states import StateGate

log = logging.getLogger(__name__)
PREFIX = "/services/Reporting"
SERVICE = "reporting"    # the service name in the SigV4 credential scope
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


def forbidden(code: str, message: str) -> HttpError:
    return HttpError("403 Forbidden", code, message)


def _headers(environ: dict) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


Handler = Callable[[dict, bytes, KeyRecord], tuple[str, Body]]


class ReportingApi:
    """A WSGI application; works whether the router passes the full path or the part after PREFIX."""

    def __init__(self, service: ReportingService, keys: AccessKeys, region: str, max_body: int = MAX_BODY,
                 clock: Callable[[], datetime] | None = None, refusals: RateLimitedLog = REFUSALS):
        self.service, self.keys, self.max_body, self.clock = service, keys, max_body, clock
        self.scope, self.refusals = auth.Scope(SERVICE, region), refusals
        self.routes: Mapping[tuple[str, str], Handler] = {
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
            self.refusals.refused(f"reporting ServiceUnavailable: {exc}")
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
        headers = _headers(environ)
        try:
            auth.require_signature(headers)     # unsigned: refused before anything is read
        except auth.AuthError as err:
            raise forbidden(err.code, err.message) from None
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
        body = self._read_body(environ) if method == "POST" else b""
        return handler(environ, body, self._authenticate(environ, headers, body))

    def _authenticate(self, environ: dict, headers: dict[str, str], body: bytes) -> KeyRecord:
        script, path = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "/")
        request = auth.Received(method=environ.get("REQUEST_METHOD", "GET").upper(), headers=headers, body=body,
                                full_path=quote(script + path, safe="/-_.~"),
                                query=environ.get("QUERY_STRING", ""), host=environ.get("HTTP_HOST", ""))
        try:
            key_id = auth.verify(request, self.keys.secret, self.scope, self.clock() if self.clock else None)
        except auth.AuthError as err:
            raise forbidden(err.code, err.message) from None
        record = self.keys.lookup(key_id)
        if record is None:   # deleted between the two lookups
            raise forbidden("InvalidClientTokenId", "The security token included in the request is invalid.")
        return record

    def _read_body(self, environ: dict) -> bytes:
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
        return environ["wsgi.input"].read(length)

    def post_events(self, environ: dict, raw: bytes, key: KeyRecord) -> tuple[str, Body]:
        try:
            docs = bounds.load_json(raw, MAX_DEPTH)
        except bounds.Malformed as exc:
            raise UserError(f"the body is not valid JSON: {exc}") from None
        events = parse_events(docs)
        for n, event in enumerate(events):   # all-or-nothing: one foreign event refuses the batch
            if not key.may_act_for(event.account):
                raise forbidden("AccessDenied", f"event {n}: account {event.account!r} is not the signing "
                                f"key's account {key.account}; only admin keys report for other accounts "
                                "(nothing was recorded)")
        recorded = self.service.record(events)
        return "application/json", json.dumps({"recorded": recorded}).encode()

    def get_usage(self, environ: dict, _body: bytes, key: KeyRecord) -> tuple[str, Body]:
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
        if not key.admin:
            if account is not None and account != key.account:
                raise forbidden("AccessDenied", f"the signing key reads account {key.account} only, not "
                                f"{account!r}; only admin keys read other accounts")
            account = key.account
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
        REFUSALS.refused(f"reporting {path} cut short: {exc}")
        raise


def _respond(start_response, status: str, ctype: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


def _error_body(code: str, message: str) -> bytes:
    doc: dict[str, Any] = {"error": {"code": code, "message": message}}
    return json.dumps(doc).encode()


def for_loop(app, loop, region: str) -> ReportingApi:
    """The API as `eucadb serve` mounts it: pools and service state from the bootstrapper, keys from the
    local store."""
    return ReportingApi(ReportingService(loop.pools, StateGate(loop.services.states, "reporting").state),
                        AccessKeys(app.store, app.secrets), region)
