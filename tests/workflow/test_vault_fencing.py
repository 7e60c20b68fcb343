"""Vault writes made for the leader are fenced by its lease in the write's own transaction: once a
leader is deposed (it paused past the TTL and another server took over), its renewal of the
certificates, its new passphrase or logins are refused with FencingError and nothing is written.
On SQLite and on PostgreSQL (the `pgstore` flavour of the store fixture)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eucadb.app import App
from eucadb.bootstrap.lease import LeaderLease
from eucadb.config import load
from eucadb.errors import FencingError
from eucadb.properties.registry import WORKER
from eucadb.retry import Retry
from eucadb.store.models import DeploymentSecret
from eucadb.workflow import pki
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import Runner, StepContext, Workflow
from eucadb.workflow.vault import Pair

TTL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(store_url, tmp_path):
    app = App(load(env={"EUCADB_HOME": str(tmp_path / "home"), "EUCADB_STORE_URL": store_url}))
    yield app
    app.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def leader(app, clock) -> LeaderLease:
    lease = LeaderLease(app.store, ttl=TTL, holder="old-leader", clock=clock)
    assert lease.acquire()
    return lease


def depose(app, clock: Clock) -> LeaderLease:
    """The leader stalls past its TTL and another server takes the lease over."""
    clock.now += TTL + 1
    successor = LeaderLease(app.store, ttl=TTL, holder="new-leader", clock=clock)
    assert successor.acquire() and successor.token == 2
    return successor


def rows(app) -> dict[str, tuple[str, object]]:
    """Every stored vault row, sealed value and timestamp: what "nothing was written" compares."""
    with app.store.session() as s:
        return {r.name: (r.value, r.updated_at) for r in s.scalars(select(DeploymentSecret))}


def aged_material() -> tuple[Pair, Pair]:
    """A CA past 2/3 of its lifetime and a server pair it issued: the next launch renews both."""
    ca = Pair(*pki.create_ca("old CA", days=3650,
                             now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3000)))
    return ca, Pair(*pki.issue_server_certificate(ca.key, ca.cert, "db.x.eucadb.internal", 30))


def test_a_deposed_leaders_vault_writes_are_refused_and_write_nothing(app, clock, leader):
    vault = app.vault(current_deployment(app.store), fence=leader.check)
    ca, server = aged_material()
    vault.put_key_material(server, ca)            # while it leads, its writes go through
    logins = vault.ensure_db_logins()
    before = rows(app)
    assert set(before) == {"ca_key", "ca_cert", "server_key", "server_cert", "db_credentials"}

    depose(app, clock)
    writes = {
        "certificate renewal": lambda: vault.ensure_key_material(30),
        "key material": lambda: vault.put_key_material(aged_material()[1]),
        "key passphrase": vault.ensure_key_passphrase,
        "password rotation": lambda: vault.rotate_passwords(("admin",)),
    }
    for what, write in writes.items():
        with pytest.raises(FencingError, match="no longer held by old-leader"):
            write()
        assert rows(app) == before, f"{what} wrote although refused"
    assert vault.db_logins() == logins and vault.ca() == ca and vault.server_pair() == server


class VaultStep:
    """A step as the launch's steps are: it writes the deployment's vault through its context."""

    def __init__(self, name: str, write, before=lambda: None):
        self.name = self.title = name
        self.write, self.before = write, before

    def adopt(self, ctx: StepContext) -> dict | None:
        return None

    def apply(self, ctx: StepContext) -> dict:
        self.before()
        self.write(ctx)
        return {}

    def rollback(self, ctx: StepContext) -> None:
        return None


def test_a_step_cannot_write_the_vault_once_its_runner_lost_the_lease(app, clock, leader):
    """The runner hands its fence to the steps' vault: the first step writes as the leader; the
    second loses the lease mid-step (a pause longer than the TTL), and its renewal is refused."""
    deployment = current_deployment(app.store)
    ca, server = aged_material()
    app.vault(deployment).put_key_material(server, ca)
    workflow = Workflow("launch", (
        VaultStep("logins", lambda ctx: ctx.vault.ensure_db_logins()),
        VaultStep("certificate", lambda ctx: ctx.vault.ensure_key_material(30),
                  before=lambda: depose(app, clock)),
    ))
    ctx = StepContext(deployment=deployment, properties={WORKER + "expiration_days": 30}, app=app)
    with pytest.raises(FencingError):
        Runner(app.store, Retry(deadline=1), fence=leader.check).run(workflow, ctx)
    vault = app.vault(deployment)
    assert vault.db_logins()                           # written while it still led
    assert vault.ca() == ca and vault.server_pair() == server   # the renewal left nothing behind
