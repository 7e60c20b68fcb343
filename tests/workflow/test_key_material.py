"""The deployment's CA and server pair in the vault: created once, renewed at 2/3 of their lifetime,
and never torn apart by a crash in the middle of a renewal."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature

from eucadb.app import App
from eucadb.config import load
from eucadb.properties.registry import WORKER
from eucadb.workflow import vault as vault_module
from eucadb.workflow import pki
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.certificate import key_material
from eucadb.workflow.vault import Pair


@pytest.fixture
def app(tmp_path):
    app = App(load(env={"EUCADB_HOME": str(tmp_path)}))
    yield app
    app.close()


def context(app) -> StepContext:
    return StepContext(deployment=current_deployment(app.store), app=app,
                       properties={WORKER + "expiration_days": 30})


def chains(server_cert: str, ca_cert: str) -> bool:
    try:
        pki.load_certificate(server_cert).verify_directly_issued_by(pki.load_certificate(ca_cert))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def age_ca(app, ctx: StepContext) -> None:
    """Put a CA past 2/3 of its lifetime (and a server pair it issued) in the vault."""
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3000)
    ca = Pair(*pki.create_ca("old CA", days=3650, now=old))
    server = Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.x.eucadb.internal", 30))
    ctx.vault.put_key_material(server, ca)


def test_first_material_chains_and_is_stable(app):
    ctx = context(app)
    first = key_material(ctx)
    assert chains(first.server_cert, first.ca_cert)
    assert key_material(ctx) == first
    assert ctx.vault.server_pair() == Pair(first.server_key, first.server_cert)


def test_a_renewed_ca_comes_with_a_server_pair_it_issued(app):
    ctx = context(app)
    age_ca(app, ctx)
    old_ca, old_server = ctx.vault.ca(), ctx.vault.server_pair()
    renewed = key_material(ctx)
    assert renewed.ca_cert != old_ca.cert and not pki.needs_renewal(renewed.ca_cert)
    assert renewed.server_cert != old_server.cert and chains(renewed.server_cert, renewed.ca_cert)


def test_a_crash_while_writing_a_renewal_keeps_the_old_material_whole(app, monkeypatch):
    """A failure on the third of the four writes (the process dies mid-renewal): the transaction
    leaves the old CA with its own server pair; the next run renews cleanly."""
    ctx = context(app)
    age_ca(app, ctx)
    vault = ctx.vault
    before = (vault.ca(), vault.server_pair())
    calls = []
    real = vault_module.utcnow

    def dying_utcnow():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-renewal")
        return real()

    monkeypatch.setattr(vault_module, "utcnow", dying_utcnow)
    with pytest.raises(KeyboardInterrupt):
        key_material(ctx)
    monkeypatch.setattr(vault_module, "utcnow", real)
    assert (vault.ca(), vault.server_pair()) == before
    renewed = key_material(ctx)
    assert chains(renewed.server_cert, renewed.ca_cert) and renewed.ca_cert != before[0].cert
