"""Which certificate `eucadb serve` presents, when it terminates TLS itself.

`serve.tls_cert` + `serve.tls_key`: the operator's pair, used as given. `serve.tls=auto`: a
certificate for `serve.host` issued at start by the deployment's CA — the CA whose certificate
clients already trust for the database (`$EUCADB_HOME/deployments/<id>/ca.crt`, also written as
`$EUCADB_HOME/serve-ca.pem`), so one CA bundle verifies both. An auto certificate lives for
`services.database.worker.expiration_days`, is made again at every start and re-issued while serve
runs (at 2/3 of its lifetime, or when the CA changed); its key exists only in this process's memory
(the file the TLS library loads it from holds it encrypted with a passphrase kept in memory, and is
removed once loaded).
"""
from __future__ import annotations

import logging
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from cheroot.ssl.builtin import BuiltinSSLAdapter

from eucadb.errors import EucadbError

from eucadb.local_server import ca_bundle, server_name
from eucadb.pool.endpoint import write_ca_file
from eucadb.properties.registry import WORKER
from eucadb.workflow import pki
from eucadb.workflow.deployment import current_deployment

log = logging.getLogger(__name__)


RENEW_CHECK_SECONDS = 3600   # how often a running serve asks whether its auto certificate is due


@dataclass(frozen=True)
class TlsSetup:
    adapter: BuiltinSSLAdapter
    ca_file: Path | None    # what clients verify with (auto), None for an operator's pair
    source: str             # for the start-up log line
    auto: "AutoCertificate | None" = None   # renews itself while serve runs (serve.tls=auto only)


class AutoCertificate:
    """serve's own certificate under `serve.tls=auto`, re-issued in place while serve runs.

    A serve that runs for months would otherwise present an expired certificate, or one from a CA
    the leader has since renewed (clients verify with the bundle, which then names the new CA).
    The new pair is loaded into the adapter's live SSL context, so new handshakes get it and open
    connections are not cut."""

    def __init__(self, app, deployment: str):
        self.app, self.deployment = app, deployment
        self.cert = ""
        self.ca_cert = ""
        self.adapter: BuiltinSSLAdapter | None = None

    def issue(self, ca_key: str, ca_cert: str) -> None:
        days = int(self.app.properties.value(WORKER + "expiration_days"))
        key, cert = pki.issue_server_certificate(ca_key, ca_cert, server_name(self.app.config["serve.host"]), days)
        passphrase = secrets.token_urlsafe(32)
        with tempfile.TemporaryDirectory(dir=self.app.config.home, prefix=".serve-tls-") as where:
            cert_file, key_file = Path(where) / "serve.crt", Path(where) / "serve.key"
            cert_file.write_text(cert + ca_cert)
            key_file.write_text(pki.encrypt_private_key(key, passphrase))
            if self.adapter is None:
                self.adapter = BuiltinSSLAdapter(str(cert_file), str(key_file), private_key_password=passphrase)
            else:
                self.adapter.context.load_cert_chain(str(cert_file), str(key_file), password=passphrase)
        previous, self.cert, self.ca_cert = self.ca_cert, cert, ca_cert
        write_ca_file(self.app.config.home, self.deployment, ca_cert)
        bundle = ca_bundle(self.app.config)
        # while clients still hold the old bundle's CA, trust both; the old one ages out by itself
        bundle.write_text(ca_cert + (previous if previous and previous != ca_cert else ""))
        bundle.chmod(0o644)   # a public certificate (its directory is private all the same)

    def due(self, now=None) -> str:
        """Why the certificate must be re-issued now ("" if not)."""
        ca = self.app.vault(self.deployment).ca()
        if ca is not None and ca.cert != self.ca_cert:
            return "the deployment's CA was renewed"
        if pki.needs_renewal(self.cert, now):
            return "past 2/3 of its lifetime"
        return ""

    def refresh(self, now=None) -> str:
        """Re-issue if due; returns why it did ("" when nothing was due)."""
        why = self.due(now)
        if why:
            ca = self.app.vault(self.deployment).ca()
            self.issue(ca.key, ca.cert)
            log.info("serve's TLS certificate re-issued (%s); new connections get it", why)
        return why

    def start(self, seconds: int = RENEW_CHECK_SECONDS) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(self._refresh_logged, "interval", seconds=seconds, max_instances=1, coalesce=True,
                          id="serve-tls-renewal")
        scheduler.start()
        return scheduler

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except (OSError, ValueError, EucadbError) as exc:   # keep serving the current one; retried next hour
            log.warning("serve's TLS certificate could not be re-issued: %s", exc)


def _auto(app) -> TlsSetup:
    deployment = current_deployment(app.store, create=True)
    vault = app.vault(deployment)
    vault.ensure_key_material(int(app.properties.value(WORKER + "expiration_days")))   # the CA, made if new
    auto = AutoCertificate(app, deployment)
    ca = vault.ca()
    auto.issue(ca.key, ca.cert)
    return TlsSetup(auto.adapter, ca_bundle(app.config),
                    f"certificate for {server_name(app.config['serve.host'])} from deployment {deployment}'s CA",
                    auto)


def tls_setup(app) -> TlsSetup | None:
    """The TLS set-up the config asks for, or None for plain HTTP."""
    cert, key = app.config["serve.tls_cert"], app.config["serve.tls_key"]
    if cert:
        return TlsSetup(BuiltinSSLAdapter(cert, key), None, f"certificate {cert}")
    if app.config["serve.tls"] == "auto":
        return _auto(app)
    return None

