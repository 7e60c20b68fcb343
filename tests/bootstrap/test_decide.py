"""decide() is pure: every lifecycle, pool and service branch checked without a cloud."""
from __future__ import annotations

from dataclasses import replace

import pytest

from eucadb.bootstrap.decide import DrainPools, Idle, MarkUnhealthy, SetServices, StartWorkflow, SwapPools, decide
from eucadb.bootstrap.services import ServiceStatus
from eucadb.states import ServiceState
from eucadb.bootstrap.snapshot import DbHealth, InstanceView, RunView, Snapshot
from eucadb.properties.registry import PROPERTIES, WORKER
from eucadb.workflow.engine import RunState


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


def test_follower_follows_the_published_endpoint_and_never_touches_the_cloud():
    follower = dict(leader=False, leader_holder="host:42", instance=None)
    # nothing published: a follower with pools drains them, one without waits
    drain = decide(snap(**follower, published_address=None))
    assert isinstance(drain, DrainPools) and "host:42 holds the leader lease" in drain.reason
    wait = decide(snap(**follower, published_address=None, pool_address=None, pool_settings_digest=None))
    assert isinstance(wait, Idle) and "no database published" in wait.reason
    # published: build pools there, follow a move, then serve
    build = decide(snap(**follower, published_address="127.80.1.4", pool_address=None, pool_settings_digest=None))
    assert isinstance(build, SwapPools) and build.address == "127.80.1.4"
    moved = decide(snap(**follower, published_address="127.80.1.9"))
    assert isinstance(moved, SwapPools) and moved.address == "127.80.1.9"
    steady = decide(snap(**follower, published_address="127.80.1.4"))
    assert isinstance(steady, Idle) and "serving the APIs from the database at 127.80.1.4" in steady.reason
    # whatever the services, runs or health say, a follower never launches, heals or sets states
    for over in ({"run": None}, {"db": DbHealth(ok=False, error="x", failures=9)},
                 {"props": {WORKER + "configured": False}}, {"services": services(ServiceState.DISABLED)}):
        assert isinstance(decide(snap(**follower, published_address="127.80.1.4", **over)), Idle)


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
    # a workflow thread that has not recorded its run yet is still a running workflow: never a second
    for run in (None, snap().run, replace(running, kind="teardown", state="failed")):
        assert isinstance(decide(snap(run=run, workflow_busy=True)), Idle)
        assert isinstance(decide(snap(run=run, workflow_busy=True, props={WORKER + "configured": False},
                                      pool_address=None, services=services())), Idle)
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


OLD = 3600.0   # an instance that booted an hour ago


@pytest.mark.parametrize("instance, error", [
    (InstanceView("i-1", "127.80.1.4", "running", age=OLD), "connection refused"),   # postmaster killed
    (InstanceView("i-1", "127.80.1.4", "stopped", age=OLD), "instance i-1 is stopped"),
])
def test_after_the_health_window_the_group_is_told_to_replace_the_instance(instance, error):
    down = dict(instance=instance, services=services(ServiceState.DISABLED))
    early = decide(snap(**down, db=DbHealth(ok=False, error=error, failures=2, proven=True)))
    assert not isinstance(early, MarkUnhealthy)
    mark = decide(snap(**down, db=DbHealth(ok=False, error=error, failures=3, proven=True)))
    assert isinstance(mark, MarkUnhealthy) and mark.instance_id == "i-1"
    assert "marked instance i-1 unhealthy, the autoscaling group replaces it" in mark.reason
    # services still enabled: they are disabled first, then the instance is marked
    first = decide(snap(instance=instance, db=DbHealth(ok=False, error=error, failures=3, proven=True)))
    assert isinstance(first, SetServices) and first.state is ServiceState.DISABLED
    # once the group knows, nothing more is asked of it
    known = decide(snap(**{**down, "instance": replace(instance, health="Unhealthy")},
                        db=DbHealth(ok=False, error=error, failures=5, proven=True)))
    assert isinstance(known, Idle) and "waiting for the autoscaling group to replace it" in known.reason


def test_a_new_instance_gets_its_boot_grace_and_a_pending_one_is_never_marked():
    booting = InstanceView("i-2", "127.80.1.9", "running", age=30.0)
    sick = DbHealth(ok=False, error="refused", failures=4)
    kw = dict(services=services(ServiceState.DISABLED), pool_address="127.80.1.9")
    grace = decide(snap(instance=booting, db=sick, **kw))
    assert isinstance(grace, Idle) and "booted 30s ago" in grace.reason
    assert isinstance(decide(snap(instance=replace(booting, age=700.0), db=sick, **kw)), MarkUnhealthy)
    assert isinstance(decide(snap(instance=booting, db=replace(sick, proven=True), **kw)), MarkUnhealthy)
    pending = decide(snap(instance=replace(booting, state="pending", age=OLD), db=sick, **kw))
    assert isinstance(pending, Idle)


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


def test_a_teardown_left_running_is_resumed_and_a_failed_one_retried():
    off = dict(props={WORKER + "configured": False}, pool_address=None, services=services())
    killed = RunView(4, "teardown", "running", 3, 11, "launch template", None, "D", 0.0)
    resume = decide(snap(**off, run=killed))
    assert isinstance(resume, StartWorkflow) and resume.kind == "teardown"
    assert resume.reason.startswith("resuming teardown at step 3/11 launch template")
    failed = replace(killed, state="failed", error="instance_role: boom", age=5.0)
    assert isinstance(decide(snap(**off, run=failed)), Idle)
    retry = decide(snap(**off, run=replace(failed, age=500.0)))
    assert isinstance(retry, StartWorkflow) and retry.kind == "teardown"


def test_daily_partition_maintenance_only_when_steady():
    due = decide(snap(maintenance_due=True))
    assert type(due).__name__ == "MaintainPartitions"
    moving = decide(snap(maintenance_due=True, instance=InstanceView("i-2", "127.80.1.9", "running")))
    assert isinstance(moving, SwapPools)


def test_a_requested_restore_first_stops_the_services_then_runs_and_a_failed_one_goes_back():
    want = {"restore": {"token": "restore-1", "backup_id": "20261202T035900", "target_time": None}, "digest": "D"}
    running = RunView(5, "restore", "running", 1, 13, "admission", None, "D", 0, options=want)
    stop = decide(snap(run=running))
    assert isinstance(stop, SetServices) and stop.state is ServiceState.DISABLED and stop.drain
    assert "restoring backup 20261202T035900" in stop.reason
    go = decide(snap(run=running, pool_address=None, services=services(ServiceState.DISABLED)))
    assert isinstance(go, StartWorkflow) and go.kind == "restore" and go.options == want
    # done: the pools follow the new instance and the services come back, no second launch
    done = replace(running, state="succeeded", age=1.0)
    swap = decide(snap(run=done, pool_address=None, services=services(ServiceState.DISABLED)))
    assert isinstance(swap, SwapPools)
    assert isinstance(decide(snap(run=done, services=services(ServiceState.DISABLED))), SetServices)
    failed = replace(running, state="rolled_back", error="wait_restored: boom", age=1.0)
    back = decide(snap(run=failed))
    assert isinstance(back, StartWorkflow) and back.kind == "launch" and "previous data volume" in back.reason


def test_a_due_scheduled_backup_is_taken_once_the_services_are_up():
    from eucadb.bootstrap.decide import TakeBackup
    fire = "2026-12-02T03:00:00+00:00"
    action = decide(snap(backup_due=fire))
    assert isinstance(action, TakeBackup) and action.fire == fire
    # not while the database is being launched, healed or its services are still coming up
    assert not isinstance(decide(snap(backup_due=fire, services=services(ServiceState.DISABLED))), TakeBackup)
    assert not isinstance(decide(snap(backup_due=fire, db=DbHealth(ok=False, error="x", failures=1))), TakeBackup)
    assert isinstance(decide(snap()), Idle)


# --- replicas: the members workflow ------------------------------------------------------------
def members_run(state="succeeded", digest="M", age=100.0):
    return RunView(2, "members", RunState(state), 7, 7, "wait members", "boom" if state == "failed" else None,
                   digest, age)


def test_no_replica_ever_asked_for_means_no_members_workflow():
    action = decide(snap(members_digest="M"))
    assert isinstance(action, Idle) and action.reason.startswith("steady")


def test_replicas_are_added_after_the_services_are_enabled_and_follow_changes():
    wanted = {WORKER + "replicas": 2}
    # services first: a replica is never on the way to ENABLED
    first = decide(snap(props=wanted, members_digest="M", services=services(ServiceState.NOTREADY)))
    assert isinstance(first, SetServices) and first.state is ServiceState.ENABLED
    add = decide(snap(props=wanted, members_digest="M"))
    assert isinstance(add, StartWorkflow) and add.kind == "members" and add.options == {"digest": "M"}
    assert "2 wanted" in add.reason
    assert isinstance(decide(snap(props=wanted, members_digest="M", members_run=members_run())), Idle)
    changed = decide(snap(props=wanted, members_digest="N", members_run=members_run()))
    assert isinstance(changed, StartWorkflow) and changed.kind == "members" and changed.options["digest"] == "N"
    resumed = decide(snap(props=wanted, members_digest="M", members_run=members_run("running")))
    assert isinstance(resumed, StartWorkflow) and resumed.reason.startswith("resuming the members workflow")
    # back to 0 replicas: one more run retires them, then nothing
    down = decide(snap(members_digest="Z", members_run=members_run()))
    assert isinstance(down, StartWorkflow) and down.kind == "members" and "0 wanted" in down.reason


def test_a_failed_members_run_is_retried_after_a_pause_and_never_blocks_the_services():
    wanted = {WORKER + "replicas": 1}
    wait = decide(snap(props=wanted, members_digest="M", members_run=members_run("failed", age=5.0)))
    assert isinstance(wait, Idle) and "boom" in wait.reason and "retrying in" in wait.reason
    retry = decide(snap(props=wanted, members_digest="M", members_run=members_run("failed", age=500.0)))
    assert isinstance(retry, StartWorkflow) and retry.kind == "members"
    # an unhealthy primary is healed first; the members wait
    sick = decide(snap(props=wanted, members_digest="M", db=DbHealth(ok=False, error="x", failures=1)))
    assert not (isinstance(sick, StartWorkflow) and sick.kind == "members")


# --- failover -----------------------------------------------------------------------------------
def replica_views(error=""):
    from eucadb.bootstrap.members import MemberView
    return (MemberView("m0", 0, "unknown", "unreachable", "one-a", "127.80.1.4", "i-1", error="down"),
            MemberView("m1", 1, "replica", "startup", "one-b", "127.80.2.4", "i-2", 1, "0/5000000",
                       "0/5000000", None, 0.0, "eucadb_member_1", "missing", error))


def lost(**over):
    base = dict(props={WORKER + "replicas": 2}, db=DbHealth(ok=False, error="connection refused", failures=3,
                                                             proven=True),
                services=services(ServiceState.DISABLED), members=replica_views(), primary_lsn=1234)
    return snap(**{**base, **over})


def test_a_lost_primary_with_replicas_fails_over_instead_of_healing_in_place():
    action = decide(lost())
    assert isinstance(action, StartWorkflow) and action.kind == "failover"
    assert action.options["from"] == 0 and action.options["last_primary_lsn"] == 1234
    assert action.options["instances"] == ["i-1"]
    assert action.reason.startswith("failing over: primary m0 lost (connection refused); fencing it")
    # the services go down first, as for healing
    first = decide(lost(services=services(ServiceState.DEGRADED)))
    assert isinstance(first, SetServices) and first.state is ServiceState.DISABLED


def test_without_a_usable_replica_or_with_manual_failover_the_group_heals_in_place():
    assert isinstance(decide(lost(members=replica_views(error="unreachable"))), MarkUnhealthy)
    assert isinstance(decide(lost(members=())), MarkUnhealthy)
    manual = lost(props={WORKER + "replicas": 2, WORKER + "failover": "manual"})
    assert isinstance(decide(manual), MarkUnhealthy)


def test_a_half_done_failover_is_resumed_before_anything_else_and_a_failed_one_waits():
    running = RunView(3, "failover", RunState.RUNNING, 3, 5, "promote", None, "", 0.0)
    healthy = snap(props={WORKER + "replicas": 2}, failover_run=running)
    action = decide(healthy)
    assert isinstance(action, StartWorkflow) and action.kind == "failover"
    assert action.reason == "resuming failover at step 3/5 promote"
    failed = RunView(3, "failover", RunState.FAILED, 2, 5, "choose candidate", "lags too much", "", 5.0)
    wait = decide(lost(failover_run=failed))
    assert isinstance(wait, Idle) and "lags too much" in wait.reason


def test_a_requested_switchover_runs_when_the_primary_is_healthy_and_a_half_done_one_resumes():
    asked = snap(props={WORKER + "replicas": 2}, switchover={"to": 2}, members_digest="M",
                 members_run=members_run())
    action = decide(asked)
    assert isinstance(action, StartWorkflow) and action.kind == "switchover"
    assert action.options["from"] == 0 and action.options["to"] == 2
    assert action.reason == "switching over: primary m0 to m2, as requested"
    running = RunView(4, "switchover", RunState.RUNNING, 2, 7, "fence primary", None, "", 0.0)
    resumed = decide(snap(props={WORKER + "replicas": 2}, switchover_run=running))
    assert isinstance(resumed, StartWorkflow) and resumed.reason == "resuming switchover at step 2/7 fence primary"


def test_a_terminated_primary_fails_over_at_once_without_the_health_window():
    gone = lost(db=DbHealth(ok=False, error="x", failures=1, proven=True),
                instance=InstanceView("i-1", None, "terminated"))
    action = decide(gone)
    assert isinstance(action, StartWorkflow) and action.kind == "failover"
    assert "instance i-1 is terminated" in action.reason
    # without replicas the group replaces it as before (after the health window)
    alone = decide(snap(db=DbHealth(ok=False, error="x", failures=1, proven=True),
                        instance=InstanceView("i-1", None, "terminated"), services=services(ServiceState.DISABLED)))
    assert not isinstance(alone, StartWorkflow)


def test_a_primary_the_group_replaced_behind_our_back_fails_over_but_a_roll_or_promotion_swaps():
    # the group booted i-9 after the last launch finished (100 s ago): the old primary was lost
    replaced = lost(db=DbHealth(ok=None), pool_instance=("i-1", 1),
                    instance=InstanceView("i-9", "127.80.1.9", "pending", age=5.0))
    action = decide(replaced)
    assert isinstance(action, StartWorkflow) and action.kind == "failover"
    assert "instance i-1 was replaced by i-9" in action.reason
    # a roll: the launch run finished after the new instance booted (it waited for it)
    rolled = snap(props={WORKER + "replicas": 2}, pool_instance=("i-1", 1), members=replica_views(),
                  instance=InstanceView("i-9", "127.80.1.9", "running", age=300.0))
    assert isinstance(decide(rolled), SwapPools)
    # a promotion: a new generation, its instance is the promoted replica's
    promoted = snap(props={WORKER + "replicas": 2}, pool_instance=("i-1", 1), generation=2,
                    members=replica_views(), instance=InstanceView("i-2", "127.80.2.4", "running", age=5.0))
    assert isinstance(decide(promoted), SwapPools)
