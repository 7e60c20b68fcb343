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
from eucadb.workflow.launch import LAUNCH, TEARDOWN


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
    return _lifecycle(s) or _pools(s) or _services(s)


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
    return {"launch": "launching", "teardown": "tearing down"}.get(kind, kind)


def _set_all(s: Snapshot, state: ServiceState, reason: str, drain: bool) -> Action | None:
    pending = [n for n, st in s.services.items() if st.state is not state and not st.admin_disabled]
    return SetServices(reason, state, drain) if pending else None


def _unconfigured(s: Snapshot) -> Action:
    reason = f"{WORKER}configured=false"
    if any(st.state is not ServiceState.DISABLED for st in s.services.values()) or s.pool_address:
        return SetServices(f"disabling services: {reason}", ServiceState.DISABLED, drain=True)
    run = s.run
    if run and run.kind == LAUNCH.kind and run.state in (RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED):
        return StartWorkflow(f"tearing down: {reason} (data volume kept)", TEARDOWN.kind, {})
    if run and run.kind == TEARDOWN.kind and run.state == RunState.RUNNING:
        return StartWorkflow(f"resuming teardown at step {run.step}/{run.total} {run.step_title}: {reason}",
                             TEARDOWN.kind, {})
    if run and run.kind == TEARDOWN.kind and run.state == RunState.FAILED:
        if run.age < s.relaunch_after:
            return Idle(f"teardown failed: {run.error}; retrying in {s.relaunch_after - run.age:.0f}s")
        return StartWorkflow(f"retrying teardown after: {run.error}", TEARDOWN.kind, {})
    return Idle(f"not configured: set {reason[:-5]}true to launch the database")


def _lifecycle(s: Snapshot) -> Action | None:
    run = s.run
    if run is None or run.kind != LAUNCH.kind:
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
    if ip is None:
        return _health_failure(s, "the autoscaling group has no instance yet" if inst is None else
                               f"instance {inst.instance_id} is {inst.state}")
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
                        drain=False) or _heal(s, why)
    enabled = any(st.state in (ServiceState.ENABLED, ServiceState.DEGRADED) for st in s.services.values())
    state = ServiceState.DEGRADED if enabled else ServiceState.NOTREADY
    return _set_all(s, state, f"database not available: {why}", drain=False) or Idle(f"waiting: {why}")


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


def _services(s: Snapshot) -> Action:
    action = _set_all(s, ServiceState.ENABLED, f"database at {s.pool_address} healthy", drain=False)
    if action:
        names = [n for n, st in s.services.items() if not st.admin_disabled]
        return SetServices(f"enabled {', '.join(names)}: database at {s.pool_address} healthy",
                           ServiceState.ENABLED)
    if s.maintenance_due:
        return MaintainPartitions("maintaining partitions: daily ones created ahead, closed raw days rolled up, "
                                 "past retention dropped")
    return Idle(f"steady: services enabled, database at {s.pool_address} healthy")
