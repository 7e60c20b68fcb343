"""decide() is pure: every lifecycle, pool and service branch checked without a cloud."""
from __future__ import annotations

from dataclasses import replace

import pytest

from eucadb.bootstrap.decide import Idle, SetServices, StartWorkflow, SwapPools, decide
from eucadb.bootstrap.services import ServiceState, ServiceStatus
from eucadb.bootstrap.snapshot import DbHealth, InstanceView, RunView, Snapshot
from eucadb.properties.registry import PROPERTIES, WORKER


def services(state=ServiceState.DISABLED, admin=None):
    return {n: ServiceStatus(n, state, "", None, admin) for n in ("cloudwatch", "reporting")}


def snap(**over) -> Snapshot:
    props = {p.name: p.default for p in PROPERTIES}
    props.update({WORKER + "configured": True, WORKER + "image": "emi-0123abcd"})
    props.update(over.pop("props", {}))
    base = Snapshot(leader=True, leader_holder="me", properties=props, digest="D", pool_digest="P",
                    run=RunView(1, "launch", "succeeded", 10, 10, "wait database", None, "D", 100.0),
                    workflow_busy=False, instance=InstanceView("i-1", "127.80.1.4", "running"),
                    pool_address="127.80.1.4", pool_settings_digest="P", db=DbHealth(ok=True),
                    services=services(ServiceState.ENABLED))
    return replace(base, **over)


def test_steady_state_is_idle():
    action = decide(snap())
    assert isinstance(action, Idle) and action.reason.startswith("steady")


def test_follower_only_watches():
    action = decide(snap(leader=False, leader_holder="host:42"))
    assert isinstance(action, Idle) and "host:42 holds the leader lease" in action.reason


def test_waits_for_preconditions_and_says_which():
    action = decide(snap(props={WORKER + "image": ""}, run=None, services=services()))
    assert isinstance(action, SetServices) and action.state is ServiceState.NOTREADY
    assert "services.database.worker.image not set" in action.reason
    again = decide(snap(props={WORKER + "image": ""}, run=None, services=services(ServiceState.NOTREADY)))
    assert isinstance(again, Idle) and again.reason.startswith("waiting: services.database.worker.image")


def test_launch_resume_roll_and_retry():
    assert decide(snap(run=None)).kind == "launch"
    running = RunView(2, "launch", "running", 4, 10, "instance role", None, "D", 0)
    assert "resuming launch at step 4/10" in decide(snap(run=running)).reason
    busy = decide(snap(run=running, workflow_busy=True))
    assert isinstance(busy, Idle) and busy.reason == "launching: step 4/10 instance role"
    rolled = decide(snap(digest="NEW"))
    assert isinstance(rolled, StartWorkflow) and rolled.reason.startswith("rolling")
    failed = RunView(3, "launch", "rolled_back", 7, 10, "launch template", "boom", "D", 5.0)
    assert isinstance(decide(snap(run=failed)), Idle)
    assert isinstance(decide(snap(run=replace(failed, age=500.0))), StartWorkflow)


def test_certificate_due_renews_by_launching_after_a_good_launch_only():
    due = "the server certificate expires 2027-01-01 00:00 UTC (past 2/3 of its lifetime)"
    renew = decide(snap(certificate_due=due))
    assert isinstance(renew, StartWorkflow) and renew.kind == "launch"
    assert renew.reason.startswith("renewing: the server certificate expires 2027-01-01")
    # a failed launch keeps its retry pacing (the renewal rides on the retry); a roll comes first
    failed = RunView(3, "launch", "rolled_back", 7, 10, "launch template", "boom", "D", 5.0)
    assert isinstance(decide(snap(certificate_due=due, run=failed)), Idle)
    assert decide(snap(certificate_due=due, digest="NEW")).reason.startswith("rolling")
    assert isinstance(decide(snap(certificate_due=due, workflow_busy=True,
                                  run=replace(failed, state="running"))), Idle)


def test_passwords_changed_in_the_vault_roll_the_instance_then_the_pools_follow():
    delivered = replace(snap().run, credentials_digest="C1")
    assert isinstance(decide(snap(run=delivered, credentials_digest="C1")), Idle)
    rotate = decide(snap(run=delivered, credentials_digest="C2", pool_digest="P:C2"))
    assert isinstance(rotate, StartWorkflow) and rotate.reason.startswith("rotating: the database passwords")
    # a run from before templates recorded the digest: one launch (all adopted if nothing changed)
    unknown = decide(snap(credentials_digest="C1"))
    assert isinstance(unknown, StartWorkflow) and "did not record" in unknown.reason
    # once a launch delivered them, new logins mean new pools (same instance address or not)
    after = decide(snap(run=replace(delivered, credentials_digest="C2"), credentials_digest="C2",
                        pool_digest="P:C2", pool_settings_digest="P:C1"))
    assert isinstance(after, SwapPools) and after.address == "127.80.1.4"


def test_pools_follow_the_endpoint_and_settings():
    moved = decide(snap(instance=InstanceView("i-2", "127.80.1.9", "running")))
    assert isinstance(moved, SwapPools) and moved.address == "127.80.1.9"
    assert "127.80.1.4 -> 127.80.1.9" in moved.reason
    first = decide(snap(pool_address=None, pool_settings_digest=None, services=services(ServiceState.NOTREADY)))
    assert isinstance(first, SwapPools) and first.reason.startswith("building pools")
    assert "pool settings changed" in decide(snap(pool_settings_digest="OLD")).reason


def test_health_degrades_then_disables_then_recovers():
    lost = decide(snap(instance=None, db=DbHealth(ok=False, error="gone", failures=1)))
    assert isinstance(lost, SetServices) and lost.state is ServiceState.DEGRADED
    dead = decide(snap(db=DbHealth(ok=False, error="refused", failures=3)))
    assert isinstance(dead, SetServices) and dead.state is ServiceState.DISABLED
    back = decide(snap(services=services(ServiceState.DISABLED)))
    assert isinstance(back, SetServices) and back.state is ServiceState.ENABLED


def test_admin_disabled_service_is_never_enabled_by_the_loop():
    mixed = {"cloudwatch": ServiceStatus("cloudwatch", ServiceState.DISABLED, "", None, "alice"),
             "reporting": ServiceStatus("reporting", ServiceState.ENABLED, "", None)}
    action = decide(snap(services=mixed))
    assert isinstance(action, Idle)


@pytest.mark.parametrize("run_state, expect", [("succeeded", StartWorkflow), ("running", StartWorkflow)])
def test_unconfigure_disables_then_tears_down(run_state, expect):
    off = {WORKER + "configured": False}
    first = decide(snap(props=off))
    assert isinstance(first, SetServices) and first.drain and first.state is ServiceState.DISABLED
    run = RunView(1, "launch", run_state, 10, 10, "x", None, "D", 1.0)
    second = decide(snap(props=off, pool_address=None, services=services(), run=run))
    assert isinstance(second, expect) and second.kind == "teardown"
    done = RunView(2, "teardown", "succeeded", 10, 10, "x", None, "D", 1.0)
    assert isinstance(decide(snap(props=off, pool_address=None, services=services(), run=done)), Idle)


def test_daily_partition_maintenance_only_when_steady():
    due = decide(snap(maintenance_due=True))
    assert type(due).__name__ == "MaintainPartitions"
    moving = decide(snap(maintenance_due=True, instance=InstanceView("i-2", "127.80.1.9", "running")))
    assert isinstance(moving, SwapPools)
