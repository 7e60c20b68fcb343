"""`serve.tls=auto`: a running serve re-issues its certificate in place — at 2/3 of its lifetime, and
when the deployment's CA was renewed — and new handshakes get the new one, verified by the bundle."""
from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509

from eucadb.app import App
from eucadb.config import load
from eucadb.local_server import ca_bundle
from eucadb.serve import server as http_server
from eucadb.serve.http import ServeApp
from eucadb.serve.tls import tls_setup
from eucadb.workflow import pki
from eucadb.workflow.deployment import Names, current_deployment
from eucadb.workflow.vault import Pair


@pytest.fixture
def serving(tmp_path):
    config = load(env={"EUCADB_HOME": str(tmp_path / "home"), "EUCADB_SERVE_TLS": "auto"})
    app = App(config)
    tls = tls_setup(app)
    server = http_server.create(ServeApp(None, None), "127.0.0.1", 0, 2, tls.adapter)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield app, tls, server.effective_port
    finally:
        server.close()
        thread.join(10)
        app.close()


def presented(app, port: int) -> x509.Certificate:
    """The certificate a fresh handshake gets, verified against the CA bundle serve wrote."""
    context = ssl.create_default_context(cafile=str(ca_bundle(app.config)))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_a_certificate_past_two_thirds_of_its_life_is_reissued_in_place(serving):
    app, tls, port = serving
    first = presented(app, port)
    assert tls.auto.refresh() == ""                     # fresh: nothing due, the same certificate served
    assert presented(app, port).serial_number == first.serial_number
    later = first.not_valid_after_utc - dt.timedelta(days=1)
    assert tls.auto.refresh(now=later) == "past 2/3 of its lifetime"
    second = presented(app, port)
    assert second.serial_number != first.serial_number


def test_a_renewed_ca_gets_a_new_certificate_and_the_bundle_trusts_it(serving):
    app, tls, port = serving
    old_issuer = presented(app, port).issuer
    deployment = current_deployment(app.store)
    ca = Pair(*pki.create_ca("eucadb renewed CA"))
    server = Pair(*pki.issue_server_certificate(ca.key, ca.cert, Names(deployment).dns_name, days=30))
    app.vault(deployment).put_key_material(server, ca)   # what the leader's certificate step does
    assert tls.auto.refresh() == "the deployment's CA was renewed"
    now = presented(app, port)                           # verified with the rewritten bundle
    assert now.issuer != old_issuer
    assert now.issuer == pki.load_certificate(ca.cert).subject
