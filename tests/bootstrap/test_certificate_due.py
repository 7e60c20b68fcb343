"""certificate_due(): the renewal trigger reads the deployment's certificates from the vault."""
from __future__ import annotations

import datetime as dt

import pytest

from eucadb.app import App
from eucadb.bootstrap.observe import certificate_due
from eucadb.config import load
from eucadb.workflow import pki
from eucadb.workflow.vault import Pair


@pytest.fixture
def vault(tmp_path):
    app = App(load(env={"EUCADB_HOME": str(tmp_path)}))
    yield app.vault("d1")
    app.close()


def holding(vault, ca: Pair, server: Pair):
    vault.put_key_material(server, ca)
    return vault


def test_nothing_due_before_the_first_launch_or_for_fresh_certificates(vault):
    assert certificate_due(vault) == ""
    ca = Pair(*pki.create_ca("CA"))
    server = Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.d1.eucadb.internal", 30))
    assert certificate_due(holding(vault, ca, server)) == ""


def test_a_server_certificate_past_two_thirds_of_its_lifetime_is_due(vault):
    ca = Pair(*pki.create_ca("CA"))
    issued = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=21)
    old = Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.d1.eucadb.internal", 30, now=issued))
    due = certificate_due(holding(vault, ca, old))
    expires = pki.load_certificate(old.cert).not_valid_after_utc
    assert due == f"the server certificate expires {expires:%Y-%m-%d %H:%M} UTC (past 2/3 of its lifetime)"
    # one day younger than 2/3 of 30 days: not yet
    young = Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.d1.eucadb.internal", 30,
                                               now=issued + dt.timedelta(days=2)))
    assert certificate_due(holding(vault, ca, young)) == ""


def test_an_old_ca_is_due_first(vault):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3000)
    ca = Pair(*pki.create_ca("CA", days=3650, now=old))
    server = Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.d1.eucadb.internal", 30))
    assert certificate_due(holding(vault, ca, server)).startswith("the CA certificate expires")
