"""certificate_due(): the renewal trigger reads the deployment's certificates from the vault."""
from __future__ import annotations

import datetime as dt

from eucadb.bootstrap.observe import certificate_due
from eucadb.workflow import pki
from eucadb.workflow.steps.certificate import CA_CERT, SERVER_CERT


class Vault(dict):
    def get(self, name, default=None):  # the Vault interface: missing names read as None
        return super().get(name, default)


def test_nothing_due_before_the_first_launch_or_for_fresh_certificates():
    assert certificate_due(Vault()) == ""
    ca_key, ca = pki.create_ca("CA")
    _, cert = pki.issue_server_certificate(ca_key, ca, "db.d1.eucadb.internal", 30)
    assert certificate_due(Vault({CA_CERT: ca, SERVER_CERT: cert})) == ""


def test_a_server_certificate_past_two_thirds_of_its_lifetime_is_due():
    ca_key, ca = pki.create_ca("CA")
    issued = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=21)
    _, old = pki.issue_server_certificate(ca_key, ca, "db.d1.eucadb.internal", 30, now=issued)
    due = certificate_due(Vault({CA_CERT: ca, SERVER_CERT: old}))
    expires = pki.load_certificate(old).not_valid_after_utc
    assert due == f"the server certificate expires {expires:%Y-%m-%d %H:%M} UTC (past 2/3 of its lifetime)"
    # one day younger than 2/3 of 30 days: not yet
    _, young = pki.issue_server_certificate(ca_key, ca, "db.d1.eucadb.internal", 30,
                                            now=issued + dt.timedelta(days=2))
    assert certificate_due(Vault({CA_CERT: ca, SERVER_CERT: young})) == ""


def test_an_old_ca_is_due_first():
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3000)
    ca_key, ca = pki.create_ca("CA", days=3650, now=old)
    _, cert = pki.issue_server_certificate(ca_key, ca, "db.d1.eucadb.internal", 30)
    assert certificate_due(Vault({CA_CERT: ca, SERVER_CERT: cert})).startswith("the CA certificate expires")
