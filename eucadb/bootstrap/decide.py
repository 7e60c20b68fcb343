"""The pure decision of one reconcile cycle: snapshot in, one action (with its sentence) out.

No I/O here, so every branch is a unit test. Split by concern: a follower only follows the leader's
published endpoint; the leader decides lifecycle (launch/teardown), pools and healing, then service
states. A workflow that runs is never started twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from eucadb.bootstrap.preconditions import unmet
from eucadb.bootstrap.snapshot import Snapshot
from eucadb.properties.registry import WORKER
from eucadb.states import ServiceState
from eucadb.workflow.engine import RunState
from eucadb.workflow.launch import FAILOVER, LAUNCH, LAUNCHES, MEMBERS, RESTORE, SWITCHOVER, TEARDOWN


# EC2 states of an instance that will not serve again (a stopped one would boot a second primary)
LOST_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


@dataclass(frozen=True)
class Action:
    reason: str


@dataclass(frozen=True)
class Idle(Action):
    pass


@dataclass(frozen=True)
class StartWorkflow(Action):
    kind: str = LAUNCH.kind
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SetServices(Action):
    """Move every service that is not admin-disabled to `state` (draining pools when leaving)."""

    state: ServiceState = ServiceState.DISABLED
    drain: bool = False


@dataclass(frozen=True)
class SwapPools(Action):
    address: str = ""


@dataclass(frozen=True)
class DrainPools(Action):
    """A follower whose leader published no endpoint: drop the pools (service states are the leader's)."""


@dataclass(frozen=True)
class MarkUnhealthy(Action):
    """Tell the autoscaling group its instance is unhealthy (SetInstanceHealth) so it replaces it, as
    a load balancer's health check does on AWS: the group, not eucadb, owns the instance's life."""

    instance_id: str = ""


@dataclass(frozen=True)
class TakeBackup(Action):
    """The scheduled base backup whose fire time `fire` (ISO 8601) has come (retention follows)."""

    fire: str = ""


@dataclass(frozen=True)
class MaintainPartitions(Action):
    """Create tomorrow's daily partitions, roll closed raw days up into the rollup tiers, drop those
    past retention (admin role, once a day)."""


def decide(s: Snapshot) -> Action:
    if not s.leader:
        return _follow(s)
    if s.workflow_busy:
        if s.run and s.run.state == RunState.RUNNING:
            return Idle(f"{_verb(s.run.kind)}: step {s.run.step}/{s.run.total} {s.run.step_title}")
        return Idle("a workflow is running: waiting for it to record its progress")
    if not s.properties[WORKER + "configured"]:
        return _unconfigured(s)
    missing = unmet(s)
    if missing:
        return _set_all(s, ServiceState.NOTREADY, "waiting: " + ", ".join(missing), drain=False) or \
            Idle("waiting: " + ", ".join(missing))
    return _lifecycle(s) or _resume_failover(s) or _pools(s) or _services(s)


def _follow(s: Snapshot) -> Action:
    """A follower serves the APIs from the endpoint the leader published; it never touches the cloud."""
    holder = s.leader_holder or "nobody"
    target = s.published_address
    if target is None:
        if s.pool_address:
            return DrainPools(f"standing by: {holder} holds the leader lease and publishes no database; "
                              "pools drained")
        return Idle(f"standing by: {holder} holds the leader lease; no database published yet")
    if s.pool_address != target or s.pool_settings_digest != s.pool_digest:
        return SwapPools(f"following {holder} (the leader): swapping pools to the published database at "
                         f"{target}", target)
    return Idle(f"standing by: {holder} holds the leader lease; serving the APIs from the database at {target}")


def _verb(kind: str) -> str:
    return {"launch": "launching", "teardown": "tearing down", "restore": "restoring"}.get(kind, kind)


def _set_all(s: Snapshot, state: ServiceState, reason: str, drain: bool) -> Action | None:
    pending = [n for n, st in s.services.items() if st.state is not state and not st.admin_disabled]
    return SetServices(reason, state, drain) if pending else None


def _unconfigured(s: Snapshot) -> Action:
    reason = f"{WORKER}configured=false"
    if any(st.state is not ServiceState.DISABLED for st in s.services.values()) or s.pool_address:
        return SetServices(f"disabling services: {reason}", ServiceState.DISABLED, drain=True)
    run = s.run
    if run and run.kind in LAUNCHES and run.state in (RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED):
        return StartWorkflow(f"tearing down: {reason} (data volume kept)", TEARDOWN.kind, {})
    if run and run.kind == TEARDOWN.kind and run.state == RunState.RUNNING:
        return StartWorkflow(f"resuming teardown at step {run.step}/{run.total} {run.step_title}: {reason}",
                             TEARDOWN.kind, {})
    if run and run.kind == TEARDOWN.kind and run.state == RunState.FAILED:
        if run.age < s.relaunch_after:
            return Idle(f"teardown failed: {run.error}; retrying in {s.relaunch_after - run.age:.0f}s")
        return StartWorkflow(f"retrying teardown after: {run.error}", TEARDOWN.kind, {})
    return Idle(f"not configured: set {reason[:-5]}true to launch the database")


def _restore(s: Snapshot) -> Action | None:
    """A restore the CLI asked for (a RUNNING run of kind restore, resumed after a kill -9 too):
    services off and pools drained first (nothing may write to the database being replaced), then
    the run. One that failed has given the old volume back: a launch returns to it."""
    run = s.run
    want = dict(run.options.get("restore") or {})
    what = f"backup {want.get('backup_id')}" + (f" to {want['target_time']}" if want.get("target_time") else "")
    if run.state == RunState.RUNNING:
        if s.pool_address or any(st.state is not ServiceState.DISABLED and not st.admin_disabled
                                 for st in s.services.values()):
            return SetServices(f"restoring {what}: services disabled, pools drained until the restored "
                               "database is up", ServiceState.DISABLED, drain=True)
        return StartWorkflow(f"restoring {what}: step {run.step}/{run.total} {run.step_title}",
                             RESTORE.kind, dict(run.options))
    if run.state in (RunState.ROLLED_BACK, RunState.FAILED):
        return StartWorkflow(f"restore of {what} failed ({run.error}); launching on the previous data "
                             "volume", LAUNCH.kind)
    return None


def _lifecycle(s: Snapshot) -> Action | None:
    run = s.run
    if run is not None and run.kind == RESTORE.kind:
        action = _restore(s)
        if action is not None:
            return action
    if run is None or run.kind not in LAUNCHES:
        return StartWorkflow("launching: no database instance yet", LAUNCH.kind)
    if run.state == RunState.RUNNING:
        return StartWorkflow(f"resuming launch at step {run.step}/{run.total} {run.step_title}", LAUNCH.kind)
    if run.digest != s.digest:
        return StartWorkflow("rolling: properties changed since the last launch "
                             "(new launch template version, same data volume)", LAUNCH.kind)
    if run.state != RunState.SUCCEEDED:
        if run.age < s.relaunch_after:
            return Idle(f"launch {run.state}: {run.error}; retrying in {s.relaunch_after - run.age:.0f}s")
        return StartWorkflow(f"retrying launch after: {run.error}", LAUNCH.kind)
    if s.certificate_due:
        return StartWorkflow(f"renewing: {s.certificate_due}; new certificate, rolling the instance "
                             "(same data volume)", LAUNCH.kind)
    if s.credentials_digest and run.credentials_digest != s.credentials_digest:
        if not run.credentials_digest:  # a run from before templates recorded it: a no-op launch tells
            return StartWorkflow(f"launching: run {run.id} did not record which database passwords its "
                                 "launch template carries", LAUNCH.kind)
        return StartWorkflow("rotating: the database passwords changed since the last launch; new "
                             "launch template version, rolling the instance (same data volume)", LAUNCH.kind)
    return None


def _pools(s: Snapshot) -> Action | None:
    inst = s.instance
    ip = inst.private_ip if inst and inst.state == "running" else None
    replaced = _replaced_behind_our_back(s)
    if replaced or (ip is None and s.pool_address and (inst is None or inst.state in LOST_STATES)):
        why = (f"instance {s.pool_instance[0]} was replaced by {inst.instance_id}" if replaced else
               "the autoscaling group has no instance" if inst is None else
               f"instance {inst.instance_id} is {inst.state}")
        failover = _failover(s, why, lost=True)   # gone: no health window to wait for
        if isinstance(failover, StartWorkflow):
            return _set_all(s, ServiceState.DISABLED, f"primary lost: {why}", drain=False) or failover
    if ip is None:
        why = ("the autoscaling group has no instance yet" if inst is None else
               f"instance {inst.instance_id} is {inst.state}")
        return _health_failure(s, why)
    if s.pool_address != ip or s.pool_settings_digest != s.pool_digest:
        why = ("building pools" if s.pool_address is None else
               f"endpoint moved {s.pool_address} -> {ip}" if s.pool_address != ip else "pool settings changed")
        return SwapPools(f"{why}: swapping pools to {ip}", ip)
    if s.db.ok is False:
        return _health_failure(s, s.db.error)
    return None


def _health_failure(s: Snapshot, why: str) -> Action:
    if s.db.failures >= s.unhealthy_limit:
        return _set_all(s, ServiceState.DISABLED, f"database unhealthy ({s.db.failures} checks): {why}",
                        drain=False) or _failover(s, why) or _heal(s, why)
    enabled = any(st.state in (ServiceState.ENABLED, ServiceState.DEGRADED) for st in s.services.values())
    state = ServiceState.DEGRADED if enabled else ServiceState.NOTREADY
    return _set_all(s, state, f"database not available: {why}", drain=False) or Idle(f"waiting: {why}")


def _resume_failover(s: Snapshot) -> Action | None:
    """A failover a previous leader left half done is finished before anything else."""
    for run, kind in ((s.failover_run, FAILOVER.kind), (s.switchover_run, SWITCHOVER.kind)):
        if run and run.state == RunState.RUNNING:
            return StartWorkflow(f"resuming {kind} at step {run.step}/{run.total} {run.step_title}",
                                 kind, {"digest": ""})
    return None


def _switchover(s: Snapshot) -> Action | None:
    """An operator asked for a planned switchover: pause the writers, let the target catch up,
    then the same fenced promotion as a failover. The request is consumed when the run starts."""
    if not s.switchover:
        return None
    to = s.switchover.get("to")
    target = f"m{to}" if to is not None else "the most advanced replica"
    return StartWorkflow(f"switching over: primary m{s.primary_member} to {target}, as requested",
                         SWITCHOVER.kind, {"digest": "", "from": s.primary_member, "to": to,
                                           "kind": "switchover", "why": "requested by an operator"})


def _replaced_behind_our_back(s: Snapshot) -> bool:
    """The primary's group now runs another instance than the pools were built for, in the same
    generation, launched after the last launch run finished: not a roll, not a promotion — the
    group replaced a lost primary, and with replicas that replacement must not become the primary
    on the old volume while a replica has the newer WAL."""
    inst, built = s.instance, s.pool_instance
    if inst is None or built is None or inst.instance_id == built[0] or built[1] != s.generation:
        return False
    return s.run is None or inst.age < s.run.age


def _failover(s: Snapshot, why: str, lost: bool = False) -> Action | None:
    """The primary is lost and there are replicas: fence it through the cloud, then promote the most
    advanced replica (the workflow does both, in that order). None: heal in place instead."""
    if s.properties.get(WORKER + "failover", "auto") != "auto":
        return None
    replicas = [m for m in s.members if m.role == "replica" and m.ip and not m.error]
    if not replicas:
        return None
    inst = s.instance
    if not lost and inst is not None and not s.db.proven and inst.age < s.health_grace:
        return Idle(f"services disabled: {why}; primary {inst.instance_id} booted {inst.age:.0f}s ago, "
                    f"failing over if still unhealthy after {s.health_grace:.0f}s")
    run = s.failover_run
    if run and run.state != RunState.SUCCEEDED and run.age < s.relaunch_after:
        return Idle(f"failover {run.state.value}: {run.error}; retrying in {s.relaunch_after - run.age:.0f}s")
    names = ", ".join(m.name for m in replicas)
    return StartWorkflow(f"failing over: primary m{s.primary_member} lost ({why}); fencing it through the "
                         f"cloud, then promoting the most advanced of {names}", FAILOVER.kind,
                         {"digest": "", "from": s.primary_member, "last_primary_lsn": s.primary_lsn,
                          "why": why, "instances": [inst.instance_id] if inst else []})


def _heal(s: Snapshot, why: str) -> Action:
    """After the health window, have the autoscaling group replace the instance — unless it booted
    so recently that it may still be starting (its grace), or the group already knows."""
    inst = s.instance
    if inst is None or inst.state in ("pending", "shutting-down", "terminated"):
        return Idle(f"services disabled: {why}; waiting for the autoscaling group's instance")
    if inst.marked_unhealthy:
        return Idle(f"services disabled: {why}; instance {inst.instance_id} is marked unhealthy, "
                    "waiting for the autoscaling group to replace it")
    if not s.db.proven and inst.age < s.health_grace:
        return Idle(f"services disabled: {why}; instance {inst.instance_id} booted {inst.age:.0f}s ago, "
                    f"replaced if still unhealthy after {s.health_grace:.0f}s")
    return MarkUnhealthy(f"database unhealthy for {s.db.failures} checks ({why}): marked instance "
                         f"{inst.instance_id} unhealthy, the autoscaling group replaces it", inst.instance_id)


def _members(s: Snapshot) -> Action | None:
    """The replicas follow the launch: once the primary is healthy and its services enabled, the
    members workflow adds, updates or retires replicas until its run matches what is wanted now.
    With no replica ever asked for there is no members run at all (a single instance, as before)."""
    run, wanted = s.members_run, int(s.properties.get(WORKER + "replicas", 0) or 0)
    options = {"digest": s.members_digest}
    if run is None:
        if wanted == 0:
            return None
        return StartWorkflow(f"adding replicas: {wanted} wanted, none yet", MEMBERS.kind, options)
    if run.state == RunState.RUNNING:
        return StartWorkflow(f"resuming the members workflow at step {run.step}/{run.total} "
                             f"{run.step_title}", MEMBERS.kind, options)
    if run.digest != s.members_digest:
        return StartWorkflow(f"updating replicas: {wanted} wanted; properties, launch or primary changed "
                             "since the last members run", MEMBERS.kind, options)
    if run.state != RunState.SUCCEEDED:
        if run.age < s.relaunch_after:
            return Idle(f"members workflow {run.state.value}: {run.error}; retrying in "
                        f"{s.relaunch_after - run.age:.0f}s")
        return StartWorkflow(f"retrying the members workflow after: {run.error}", MEMBERS.kind, options)
    return None


def _services(s: Snapshot) -> Action:
    action = _set_all(s, ServiceState.ENABLED, f"database at {s.pool_address} healthy", drain=False)
    if action:
        names = [n for n, st in s.services.items() if not st.admin_disabled]
        return SetServices(f"enabled {', '.join(names)}: database at {s.pool_address} healthy",
                           ServiceState.ENABLED)
    members = _switchover(s) or _members(s)
    if members:
        return members
    if s.backup_due:
        return TakeBackup(f"taking the scheduled base backup of {s.backup_due}", s.backup_due)
    if s.maintenance_due:
        return MaintainPartitions("maintaining partitions: daily ones created ahead, closed raw days rolled up, "
                                 "past retention dropped")
    return Idle(f"steady: services enabled, database at {s.pool_address} healthy")
