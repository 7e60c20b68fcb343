"""The HTTP server under `eucadb serve`: waitress for plain HTTP, cheroot when it terminates TLS.

waitress does no TLS and its maintainers point to a reverse proxy for it (Pylons/waitress#459); its
asyncore loop reads sockets non-blocking, which an already-wrapped SSL listening socket (the
`sockets=` parameter) does not survive: a handshake would block the loop, and SSLWantRead is not
handled. cheroot (CherryPy's server, maintained by the same project) does TLS natively with the
standard library's ssl module, handshakes in its worker threads, and is a thread-pool WSGI server
like waitress, so admission control (eucadb/serve/admission.py) works unchanged.
bench/tls_overhead.py measures both servers, with and without TLS.
"""
from __future__ import annotations

from typing import Protocol

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from eucadb.errors import EucadbError


class HttpServer(Protocol):
    effective_port: int

    def run(self) -> None: ...

    def close(self) -> None: ...


class CherootServer:
    """cheroot's WSGI server behind waitress's three calls (bound at construction, like waitress)."""

    def __init__(self, app, host: str, port: int, threads: int, adapter: BuiltinSSLAdapter | None):
        self.server = wsgi.Server((host, port), app, numthreads=threads, server_name="eucadb")
        self.server.ssl_adapter = adapter
        self.server.prepare()
        self.effective_port = self.server.bind_addr[1]

    def run(self) -> None:
        self.server.serve()

    def close(self) -> None:
        self.server.stop()


def create(app, host: str, port: int, threads: int, adapter: BuiltinSSLAdapter | None = None) -> HttpServer:
    """A bound server for `app`: TLS (cheroot) when `adapter` is given, plain HTTP (waitress) otherwise."""
    from waitress import create_server
    try:
        if adapter is not None:
            return CherootServer(app, host, port, threads, adapter)
        return create_server(app, host=host, port=port, threads=threads, ident="eucadb")
    except OSError as exc:   # the port is taken, the address is not this host's …
        raise EucadbError(f"cannot listen on {host}:{port} (serve.host, serve.port): "
                          f"{exc.strerror or exc}") from None
