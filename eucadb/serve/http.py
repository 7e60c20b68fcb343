"""The WSGI application of `eucadb serve`, served by waitress (a production WSGI server).

/readyz answers 200 or 503 and nothing else matters to a load balancer; /status explains. The probes
(/healthz /readyz /status /metrics) never wait for the remote database and never queue behind the
service APIs: those are admitted up to a limit that leaves threads free, and answered 503 above it.
"""
from __future__ import annotations

import json
import logging
from typing import Callable, Iterable

from eucadb.errors import EucadbError
from eucadb.logs import REFUSALS
from eucadb.serve import metrics, status
from eucadb.serve.admission import Admission
from eucadb.serve.html import render_html

log = logging.getLogger(__name__)
BUSY = "The service is at its concurrency limit; retry later."


class ServeApp:
    def __init__(self, app, loop, extra: dict[str, Callable] | None = None, api_slots: int | None = None):
        self.app, self.loop = app, loop
        self.routes = {"/healthz": self.healthz, "/readyz": self.readyz, "/status": self.status,
                       "/metrics": self.metrics}
        self.prefixes = dict(extra or {})   # service APIs answer everything under their path
        self.admission = Admission(api_slots)
        self.registry = metrics.registry_for(lambda: status.build(self.app, self.loop), self.admission)

    def route(self, path: str) -> tuple[Callable | None, bool]:
        """The handler for `path` and whether it is a service API (admission-controlled)."""
        handler = self.routes.get(path.rstrip("/") or "/status")
        if handler is not None:
            return handler, False
        for prefix, api in self.prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return api, True
        return None, False

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        handler, is_api = self.route(environ.get("PATH_INFO", "/"))
        if handler is None:
            return self._send(start_response, "404 Not Found", "text/plain", b"not found\n")
        if not is_api:
            return self._probe(handler, environ, start_response)
        with self.admission.enter() as admitted:
            if admitted:
                return handler(environ, start_response)
            REFUSALS.refused(f"ServiceUnavailable: {BUSY}")
            responder = getattr(handler, "unavailable", None)
            if responder is not None:
                return responder(environ, start_response, BUSY)
            return self._send(start_response, "503 Service Unavailable", "text/plain", f"{BUSY}\n".encode())

    def _probe(self, handler, environ, start_response):
        try:
            return handler(environ, start_response)
        except EucadbError as exc:
            REFUSALS.refused(f"{environ.get('PATH_INFO')} failed: {exc}")
            return self._send(start_response, "503 Service Unavailable", "text/plain",
                              f"unavailable: {exc}\n".encode())

    @staticmethod
    def _send(start_response, code: str, ctype: str, body: bytes) -> list[bytes]:
        start_response(code, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                              ("Cache-Control", "no-store")])
        return [body]

    def healthz(self, environ, start_response):
        return self._send(start_response, "200 OK", "text/plain", b"ok\n")

    def readyz(self, environ, start_response):
        doc = status.build(self.app, self.loop)
        if doc["ready"]:
            return self._send(start_response, "200 OK", "text/plain", b"ready\n")
        waiting = "; ".join(f"{n}: {s['state']} ({s['reason']})" for n, s in doc["services"].items())
        return self._send(start_response, "503 Service Unavailable", "text/plain", f"{waiting}\n".encode())

    def status(self, environ, start_response):
        doc = status.build(self.app, self.loop)
        if "text/html" in environ.get("HTTP_ACCEPT", ""):
            return self._send(start_response, "200 OK", "text/html; charset=utf-8", render_html(doc).encode())
        body = json.dumps(doc, indent=2, default=str).encode()
        return self._send(start_response, "200 OK", "application/json", body)

    def metrics(self, environ, start_response):
        return self._send(start_response, "200 OK", metrics.CONTENT_TYPE, metrics.render(self.registry))
