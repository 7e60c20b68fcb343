"""The deployment's CA and server pair in the vault: created once, renewed at 2/3 of their lifetime,
and never torn apart by a crash in the middle of a renewal."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature

from eucadb.app import App
from eucadb.config import load
from eucadb.properties.registry import WORKER
from eucadb.workflow import deployment as deployment_module
from eucadb.workflow import pki
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.certificate import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, ensure_key_material


@pytest.fixture
def app(tmp_path):
    app = App(load(env={"EUCADB_HOME": str(tmp_path)}))
    yield app
    app.close()


def context(app) -> StepContext:
    return StepContext(deployment=current_deployment(app.store), services=app,
                       properties={WORKER + "expiration_days": 30})


def chains(server_cert: str, ca_cert: str) -> bool:
    try:
        pki.load_certificate(server_cert).verify_directly_issued_by(pki.load_certificate(ca_cert))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def age_ca(app, ctx: StepContext) -> None:
    """Put a CA past 2/3 of its lifetime (and a server pair it issued) in the vault."""
    vault = app.vault(ctx.deployment)
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3000)
    ca_key, ca = pki.create_ca("old CA", days=3650, now=old)
    key, cert = pki.issue_server_certificate(ca_key, ca, "db.x.eucadb.internal", 30)
    vault.put_many({CA_KEY: ca_key, CA_CERT: ca, SERVER_KEY: key, SERVER_CERT: cert})


def test_first_material_chains_and_is_stable(app):
    ctx = context(app)
    first = ensure_key_material(ctx, app.vault(ctx.deployment))
    assert chains(first[SERVER_CERT], first[CA_CERT])
    assert ensure_key_material(ctx, app.vault(ctx.deployment)) == first


def test_a_renewed_ca_comes_with_a_server_pair_it_issued(app):
    ctx = context(app)
    age_ca(app, ctx)
    old = {n: app.vault(ctx.deployment).get(n) for n in (CA_CERT, SERVER_CERT)}
    renewed = ensure_key_material(ctx, app.vault(ctx.deployment))
    assert renewed[CA_CERT] != old[CA_CERT] and not pki.needs_renewal(renewed[CA_CERT])
    assert renewed[SERVER_CERT] != old[SERVER_CERT] and chains(renewed[SERVER_CERT], renewed[CA_CERT])


def test_a_crash_while_writing_a_renewal_keeps_the_old_material_whole(app, monkeypatch):
    """A failure on the third of the four writes (the process dies mid-renewal): the transaction
    leaves the old CA with its own server pair; the next run renews cleanly."""
    ctx = context(app)
    age_ca(app, ctx)
    vault = app.vault(ctx.deployment)
    before = {n: vault.get(n) for n in (CA_KEY, CA_CERT, SERVER_KEY, SERVER_CERT)}
    calls = []
    real = deployment_module.utcnow

    def dying_utcnow():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-renewal")
        return real()

    monkeypatch.setattr(deployment_module, "utcnow", dying_utcnow)
    with pytest.raises(KeyboardInterrupt):
        ensure_key_material(ctx, vault)
    monkeypatch.setattr(deployment_module, "utcnow", real)
    assert {n: vault.get(n) for n in before} == before
    renewed = ensure_key_material(ctx, vault)
    assert chains(renewed[SERVER_CERT], renewed[CA_CERT]) and renewed[CA_CERT] != before[CA_CERT]
