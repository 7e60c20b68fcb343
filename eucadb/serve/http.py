"""The WSGI application of `eucadb serve`, served by waitress (a production WSGI server).

/readyz answers 200 or 503 and nothing else matters to a load balancer; /status explains.
"""
from __future__ import annotations

import html
import json
import logging
from typing import Callable, Iterable

from eucadb.errors import EucadbError
from eucadb.serve import metrics, status

log = logging.getLogger(__name__)


class ServeApp:
    def __init__(self, app, loop, extra: dict[str, Callable] | None = None):
        self.app, self.loop = app, loop
        self.routes = {"/healthz": self.healthz, "/readyz": self.readyz, "/status": self.status,
                       "/metrics": self.metrics, **(extra or {})}
        self.prefixes = dict(extra or {})   # service APIs answer everything under their path

    def route(self, path: str) -> Callable | None:
        handler = self.routes.get(path.rstrip("/") or "/status")
        if handler is None:
            handler = next((h for p, h in self.prefixes.items() if path.startswith(p + "/")), None)
        return handler

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        handler = self.route(environ.get("PATH_INFO", "/"))
        if handler is None:
            return self._send(start_response, "404 Not Found", "text/plain", b"not found\n")
        try:
            return handler(environ, start_response)
        except EucadbError as exc:
            log.warning("%s failed: %s", environ.get("PATH_INFO"), exc)
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
        body = metrics.render(status.build(self.app, self.loop)).encode()
        return self._send(start_response, "200 OK", "text/plain; version=0.0.4", body)


def render_html(doc: dict) -> str:
    esc = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
    rows = "".join(f"<tr><td>{esc(n)}</td><td>{esc(s['state'])}</td><td>{esc(s['reason'])}</td>"
                   f"<td>{esc(s['since'])}</td></tr>" for n, s in doc["services"].items())
    run = doc.get("workflow") or {"steps": []}
    steps = "".join(f"<tr><td>{esc(st['step'])}</td><td>{esc(st['state'])}</td><td>{esc(st['seconds'])}</td>"
                    f"<td>{esc(st['error'])}</td></tr>" for st in run["steps"])
    db = doc.get("database") or {}
    loop = doc.get("loop") or {}
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>eucadb status</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head><body>
<h1>eucadb {esc(doc['deployment'])} — {'ready' if doc['ready'] else 'not ready'}</h1>
<p>{esc(loop.get('sentence'))}</p>
<h2>Services</h2><table><tr><th>service</th><th>state</th><th>reason</th><th>since</th></tr>{rows}</table>
<h2>Database</h2><p>endpoint {esc(db.get('endpoint'))} ({esc(db.get('dns_name'))}), healthy: {esc(db.get('healthy'))}
{esc(db.get('error'))}</p><p>instance: {esc(doc.get('instance'))}</p>
<h2>Workflow {esc(run.get('kind'))} — {esc(run.get('state'))}</h2>
<table><tr><th>step</th><th>state</th><th>seconds</th><th>error</th></tr>{steps}</table>
</body></html>"""
