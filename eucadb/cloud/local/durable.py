"""The hook that makes the embedded cloud's control plane durable: no change is acknowledged before it
is on disk.

A WSGI layer around the gateway (so the gateway itself stays as it is): a request that may change a
persisted service runs under one lock, then the state is saved (state.Store.save: only when it
changed, atomically, fsync'ed), and only then is the answer sent. A crash of the API process at any
moment therefore loses no acknowledged change; an unacknowledged one may or may not be kept, as
with AWS. Read-only requests (Describe*/List*/Get*/Head*, and GET/HEAD in the REST protocols) skip
the lock and the save.

Requests the gateway sends to itself (its own key, `passthrough_key`, while it handles a request
that already holds the lock) pass through: waiting for the lock would deadlock, and the outer request saves
their effect.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import parse_qs

from eucadb.cloud.local import faults
from eucadb.cloud.local.gateway import buffered, read_body
from eucadb.cloud.local.state import SERVICES, Store

log = logging.getLogger(__name__)
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request")
READ_PREFIXES = ("Describe", "List", "Get", "Head")
READ_METHODS = frozenset({"GET", "HEAD"})
# REST services name no action: the method and path say what a request does
REST_SERVICES = frozenset({"ebs"})
# saved with the next change instead of after each request: an image upload sends thousands of
# blocks, and saving the growing snapshot after each would be quadratic. A crash mid-upload leaves
# the snapshot `pending` without the blocks since the last save; the upload is started again.
DEFERRED = (("ebs", "PUT", re.compile(r"^/snapshots/[^/]+/blocks/\d+$")),)


@dataclass(frozen=True)
class Request:
    service: str
    key: str
    action: str  # the action name; for REST services "METHOD /path"
    mutating: bool
    deferred: bool


def _action(environ: dict) -> str:
    """JSON protocols name the action in X-Amz-Target, Query in the query string or the body."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    params = parse_qs(environ.get("QUERY_STRING", "")) or parse_qs(read_body(environ).decode(errors="replace"))
    return params.get("Action", [""])[0]


def classify(environ: dict) -> Request | None:
    """What a signed request to a persisted service does; None for anything else (S3, unsigned…),
    whose body is not even read."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match or match.group(2) not in SERVICES:
        return None
    key, service = match.groups()
    method = environ.get("REQUEST_METHOD", "GET")
    if service in REST_SERVICES:
        path = environ.get("PATH_INFO", "")
        deferred = any(s == service and m == method and p.match(path) for s, m, p in DEFERRED)
        return Request(service, key, f"{method} {path}", method not in READ_METHODS, deferred)
    action = _action(environ)
    return Request(service, key, action, not action.startswith(READ_PREFIXES), False)


class Durable:
    def __init__(self, app: Callable, store: Store, passthrough_key: str):
        self.app, self.store, self.passthrough_key = app, store, passthrough_key
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = classify(environ)
        if request is None or not request.mutating or request.key == self.passthrough_key:
            return self.app(environ, start_response)
        with self._lock:
            status, headers, answer = buffered(self.app, environ)
            if not request.deferred:
                started = time.perf_counter()
                try:
                    if self.store.save():
                        log.debug("%s %s: state saved in %.1f ms", request.service, request.action,
                                  (time.perf_counter() - started) * 1000)
                except OSError as exc:
                    log.error("%s %s: the control-plane state was not saved: %s", request.service,
                              request.action, exc)
                    protocol = "json" if environ.get("HTTP_X_AMZ_TARGET") else "query"
                    status, ctype, answer = faults.error_response(
                        protocol, request.service, "InternalError",
                        f"the change was made but could not be saved ({exc.strerror}); retry", 500)
                    headers = [("Content-Type", ctype)]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(answer)))])
        return [answer]
