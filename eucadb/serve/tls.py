"""Which certificate `eucadb serve` presents, when it terminates TLS itself.

`serve.tls_cert` + `serve.tls_key`: the operator's pair, used as given. `serve.tls=auto`: a
certificate for `serve.host` issued at start by the deployment's CA — the CA whose certificate
clients already trust for the database (`$EUCADB_HOME/deployments/<id>/ca.crt`, also written as
`$EUCADB_HOME/serve-ca.pem`), so one CA bundle verifies both. An auto certificate lives for `services.database.worker.expiration_days` and is made
again at every start; its key exists only in this process's memory (the file the TLS library loads
it from holds it encrypted with a passphrase kept in memory, and is removed once loaded).
"""
from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cheroot.ssl.builtin import BuiltinSSLAdapter

from eucadb.local_server import ca_bundle, server_name
from eucadb.pool.endpoint import write_ca_file
from eucadb.properties.registry import WORKER
from eucadb.workflow import pki
from eucadb.workflow.deployment import current_deployment


@dataclass(frozen=True)
class TlsSetup:
    adapter: BuiltinSSLAdapter
    ca_file: Path | None    # what clients verify with (auto), None for an operator's pair
    source: str             # for the start-up log line


def _auto(app) -> TlsSetup:
    deployment = current_deployment(app.store, create=True)
    vault = app.vault(deployment)
    days = int(app.properties.value(WORKER + "expiration_days"))
    material = vault.ensure_key_material(days)   # the deployment's CA (made now if this is its first use)
    key, cert = pki.issue_server_certificate(vault.ca().key, material.ca_cert,
                                             server_name(app.config["serve.host"]), days)
    passphrase = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(dir=app.config.home, prefix=".serve-tls-") as where:
        cert_file, key_file = Path(where) / "serve.crt", Path(where) / "serve.key"
        cert_file.write_text(cert + material.ca_cert)
        key_file.write_text(pki.encrypt_private_key(key, passphrase))
        adapter = BuiltinSSLAdapter(str(cert_file), str(key_file), private_key_password=passphrase)
    write_ca_file(app.config.home, deployment, material.ca_cert)
    bundle = ca_bundle(app.config)
    bundle.write_text(material.ca_cert)
    bundle.chmod(0o644)   # a public certificate (its directory is private all the same)
    return TlsSetup(adapter, bundle, f"certificate for {server_name(app.config['serve.host'])} "
                                      f"from deployment {deployment}'s CA")


def tls_setup(app) -> TlsSetup | None:
    """The TLS set-up the config asks for, or None for plain HTTP."""
    cert, key = app.config["serve.tls_cert"], app.config["serve.tls_key"]
    if cert:
        return TlsSetup(BuiltinSSLAdapter(cert, key), None, f"certificate {cert}")
    if app.config["serve.tls"] == "auto":
        return _auto(app)
    return None

