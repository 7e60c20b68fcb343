"""An operator's certificate (`serve.tls_cert` + `serve.tls_key`): `eucadb serve`'s server presents it,
and the local clients (`eucadb status`, `report usage`) verify it with the configured chain."""
from __future__ import annotations

import threading
import urllib.request

from eucadb.app import App
from eucadb.config import load
from eucadb.local_server import base_url, client_context
from eucadb.serve import server as http_server
from eucadb.serve.http import ServeApp
from eucadb.serve.tls import tls_setup
from eucadb.workflow import pki


def test_an_operator_pair_is_served_and_verified(tmp_path):
    ca_key, ca_cert = pki.create_ca("operator CA")
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, "127.0.0.1", days=1)
    (tmp_path / "chain.pem").write_text(cert + ca_cert)
    (tmp_path / "server.key").write_text(key)
    config = load(env={"EUCADB_HOME": str(tmp_path / "home"), "EUCADB_SERVE_TLS_CERT": str(tmp_path / "chain.pem"),
                       "EUCADB_SERVE_TLS_KEY": str(tmp_path / "server.key")})
    tls = tls_setup(App(config))
    server = http_server.create(ServeApp(None, None), "127.0.0.1", 0, 2, tls.adapter)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert base_url(config).startswith("https://127.0.0.1:")
        url = f"https://127.0.0.1:{server.effective_port}/healthz"
        with urllib.request.urlopen(url, timeout=10, context=client_context(config)) as resp:
            assert resp.read() == b"ok\n"
    finally:
        server.close()
        thread.join(10)
