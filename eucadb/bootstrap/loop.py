"""The reconcile loop: observe → decide (pure) → act, one sentence per cycle (docs/architecture.md §8).

Scheduled by APScheduler every `loop.interval` seconds; a cycle never overlaps the next one. The
workflow runs on its own thread so cycles stay short and keep reporting progress while it works.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

from apscheduler.schedulers.background import BackgroundScheduler

from botocore.exceptions import ClientError

from eucadb.backup.archiver import ArchiverView, read_archiver
from eucadb.cloud.client import error_code, error_message
from eucadb.backup.jobs import ScheduledBackups
from eucadb.bootstrap.decide import (Action, DrainPools, Idle, MaintainPartitions, MarkUnhealthy, SetServices,
                                     StartWorkflow, SwapPools, TakeBackup, decide)
from eucadb.bootstrap.lease import LeaderLease
from eucadb.bootstrap.members import lsn, member_instances, observe_members
from eucadb.workflow.members import Member
from eucadb.bootstrap.observe import (LAUNCH_INPUTS, POOL_INPUTS, certificate_due, digest, instance_facts,
                                     latest_run, members_digest)
from eucadb.bootstrap.published import publish, published_address, withdraw
from eucadb.bootstrap.services import ServiceRegistry, ServiceStatus
from eucadb.bootstrap.snapshot import DbHealth, InstanceView, RunView, Snapshot
from eucadb.states import ServiceState
from eucadb.store.replication import PrimaryRecord, clear_switchover, primary_record, switchover_request
from eucadb.errors import CloudError, DatabaseError, EucadbError
from eucadb.pool.contexts import REMOTE
from eucadb.pool.manager import ClusterFacts, PoolManager, PoolSettings, RemoteTarget
from eucadb.pool.migrate import migrate_remote
from eucadb.services.cloudwatch import partitions
from eucadb.properties.registry import WORKER
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.launch import FAILOVER, LAUNCH, MEMBERS, RESTORE, SWITCHOVER, TEARDOWN
from eucadb.workflow.service import run_workflow

log = logging.getLogger("eucadb.loop")
WORKFLOWS = {w.kind: w for w in (LAUNCH, TEARDOWN, RESTORE, MEMBERS, FAILOVER, SWITCHOVER)}


def _today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class _Stored:
    """What one cycle reads from the store, in one transaction."""

    holder: str
    properties: Mapping[str, Any]
    deployment: str | None
    run: RunView | None
    logins: str
    certificate_due: str
    services: Mapping[str, ServiceStatus]
    published: str | None
    members_run: RunView | None = None
    generation: int = 1
    primary_member: int = 0
    failover_run: RunView | None = None
    switchover: Mapping[str, Any] | None = None
    switchover_run: RunView | None = None


class Bootstrapper:
    def __init__(self, app, lease: LeaderLease | None = None):
        self.app = app
        self.lease = lease or LeaderLease(app.store, ttl=app.config["lease.ttl"])
        self.pools = PoolManager(app.store.engine)
        self.services = ServiceRegistry(app.store)
        self._workflow: threading.Thread | None = None
        self._failures = 0
        self._last_health = 0.0
        self._last_health_error = ""
        self._health_of: str | None = None   # the instance the failure count is about
        self._proven = False                 # that instance has passed a check since we saw it
        self._archiver: ArchiverView | None = None
        self._members: tuple = ()
        self._primary_lsn: int | None = None
        self._pool_instance: tuple[str, int] | None = None
        self._last_members = 0.0
        self._maintained_on: date | None = None
        self._lock = threading.Lock()
        self.last_sentence = "starting"
        self.last_snapshot: Snapshot | None = None
        self.cluster: ClusterFacts | None = None   # the database the pools point at (status shows it)
        self.cycle_seconds = 0.0
        self.cycles = 0
        self._scheduler: BackgroundScheduler | None = None
        self.backups = ScheduledBackups(app)

    # --- observe ---------------------------------------------------------------------------------
    def observe(self) -> Snapshot:
        leader = self.lease.acquire()
        with self.app.store.transaction():   # one consistent read of the store; no remote call inside
            stored = self._read_store(leader)
        instance, cloud_error = self._cloud_facts(leader, stored.deployment, stored.primary_member)
        props, target = stored.properties, self.pools.target
        if leader and (props[WORKER + "replicas"] or stored.members_run is not None):
            self._observe_members(props, stored.deployment)
        elif not leader:
            self._members = ()
        return Snapshot(
            leader=leader, leader_holder=stored.holder, properties=props,
            digest=digest(props, LAUNCH_INPUTS), pool_digest=f"{digest(props, POOL_INPUTS)}:{stored.logins}",
            run=stored.run, workflow_busy=self._workflow is not None and self._workflow.is_alive(),
            instance=instance, pool_address=target.endpoint.address if target else None,
            pool_settings_digest=target.settings_digest if target else None,
            db=self._health(props, instance), services=stored.services, cloud_error=cloud_error,
            unhealthy_limit=3, relaunch_after=max(30.0, self.app.config["loop.interval"] * 6),
            maintenance_due=leader and target is not None and self._maintained_on != _today(),
            certificate_due=stored.certificate_due, credentials_digest=stored.logins,
            published_address=stored.published, health_grace=float(props[WORKER + "health_grace"]),
            archiver=self._archiver,
            backup_due=self.backups.due(stored.deployment, props, self.lease.check)
            if leader and stored.deployment and target is not None else "",
            members_run=stored.members_run, members=self._members,
            primary_member=stored.primary_member, failover_run=stored.failover_run,
            primary_lsn=self._primary_lsn, switchover=stored.switchover, switchover_run=stored.switchover_run,
            generation=stored.generation, pool_instance=self._pool_instance,
            members_digest=members_digest(props, stored.run, instance.private_ip if instance else None,
                                          stored.generation))

    def _read_store(self, leader: bool) -> "_Stored":
        holder = self.lease.current()
        # A follower creates nothing, not even the deployment's identity: that is the leader's first write.
        deployment = current_deployment(self.app.store, create=leader)
        vault = self.app.vault(deployment) if deployment else None
        record = primary_record(self.app.store, deployment) if deployment else PrimaryRecord()
        return _Stored(
            holder=holder.holder if holder else "", properties=self.app.properties.values(),
            deployment=deployment, run=latest_run(self.app.store, deployment) if deployment else None,
            logins=vault.credentials_digest() if vault else "",
            certificate_due=certificate_due(vault) if vault else "", services=self.services.all(),
            published=None if leader else published_address(self.app.store, deployment),
            members_run=latest_run(self.app.store, deployment, (MEMBERS.kind,)) if deployment else None,
            generation=record.generation, primary_member=record.member,
            failover_run=latest_run(self.app.store, deployment, (FAILOVER.kind,)) if deployment else None,
            switchover=switchover_request(self.app.store, deployment) if deployment else None,
            switchover_run=latest_run(self.app.store, deployment, (SWITCHOVER.kind,)) if deployment else None)

    def _cloud_facts(self, leader: bool, deployment: str | None,
                     primary: int = 0) -> tuple[InstanceView | None, str | None]:
        """What the cloud says of the instance — asked by the lease holder only."""
        if not leader:
            return None, None     # followers follow the published endpoint instead
        if not self.app.clients.configured:
            return None, "no cloud configured"
        try:
            return instance_facts(self.app.clients, deployment, Member(deployment, primary).group), None
        except CloudError as exc:
            return None, str(exc)

    def _health(self, props, instance: InstanceView | None) -> DbHealth:
        """One check per health interval: the instance is up, and every pool's login works.

        The count is per instance: a replacement starts with a clean record (and its boot grace)."""
        current = instance.instance_id if instance else None
        if current != self._health_of:
            self._health_of, self._failures, self._proven, self._last_health_error = current, 0, False, ""
        now = time.monotonic()
        if now - self._last_health >= props[WORKER + "health_interval"]:
            error: str | None = None
            if instance is not None and instance.state not in ("running", "pending"):
                error = f"instance {instance.instance_id} is {instance.state}"
            elif self.pools.target is not None:
                error = self.pools.check()
            if error is not None or self.pools.target is not None:
                self._last_health = now
                self._failures = 0 if error is None else self._failures + 1
                self._proven = self._proven or error is None
                self._last_health_error = error or ""
                self._archiver = self._read_archiver() if error is None else self._archiver
        ok = None if self.pools.target is None else self._failures == 0
        return DbHealth(ok=ok, error=self._last_health_error, failures=self._failures, proven=self._proven)

    def _observe_members(self, props, deployment: str | None) -> None:
        """Every member's role, zone, timeline, WAL positions and slot, once per health interval."""
        now = time.monotonic()
        if deployment is None or now - self._last_members < props[WORKER + "health_interval"]:
            return
        self._last_members = now
        vault = self.app.vault(deployment)
        try:
            instances = member_instances(self.app.clients, deployment)
            self._members = observe_members(instances, primary_record(self.app.store, deployment).member,
                                            vault.db_endpoint, vault.db_logins()[ADMIN])
            head = next((lsn(m.received_lsn) for m in self._members if m.role == "primary"
                         and m.received_lsn), None)
            self._primary_lsn = head if head is not None else self._primary_lsn
        except (CloudError, EucadbError) as exc:
            log.warning("could not observe the replication members: %s", exc)

    def _read_archiver(self) -> ArchiverView:
        """pg_stat_archiver through the pools' endpoint, as the admin (read with the health check)."""
        deployment = current_deployment(self.app.store, create=False)
        if deployment is None or self.pools.target is None:
            return ArchiverView(error="no database")
        admin = self.app.vault(deployment).db_logins()[ADMIN]
        return read_archiver(self.pools.target.endpoint, admin["user"], admin["password"])

    # --- act -------------------------------------------------------------------------------------
    def act(self, action: Action, s: Snapshot) -> str:
        if isinstance(action, StartWorkflow):
            self._start_workflow(action, s)
        elif isinstance(action, SetServices):
            self._set_services(action)
        elif isinstance(action, SwapPools):
            return self._swap_pools(action, s)
        elif isinstance(action, MaintainPartitions):
            return self._maintain_partitions(action)
        elif isinstance(action, MarkUnhealthy):
            return self._mark_unhealthy(action)
        elif isinstance(action, TakeBackup):
            return self.backups.take(action, self.lease.check)
        elif isinstance(action, DrainPools):
            self.pools.drain()
        return action.reason

    def _mark_unhealthy(self, action: MarkUnhealthy) -> str:
        try:
            self.app.clients.call("autoscaling", "set_instance_health", InstanceId=action.instance_id,
                                  HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
        except ClientError as exc:
            if error_code(exc) == "ValidationError":   # no longer in the group: already replaced
                return f"instance {action.instance_id} already left its autoscaling group: {error_message(exc)}"
            return f"could not mark instance {action.instance_id} unhealthy (tried again next cycle): {exc}"
        except CloudError as exc:
            return f"could not mark instance {action.instance_id} unhealthy (tried again next cycle): {exc}"
        return action.reason

    def _maintain_partitions(self, action: MaintainPartitions) -> str:
        target = self.pools.target
        deployment = current_deployment(self.app.store)
        admin = self.app.vault(deployment).db_logins()[ADMIN]
        try:
            created, dropped = partitions.maintain(target.endpoint, admin["user"], admin["password"], _today())
        except DatabaseError as exc:
            return f"partition maintenance failed (retried next cycle): {exc}"
        self._maintained_on = _today()
        return f"{action.reason}: {len(created)} created, {len(dropped)} dropped"

    def _start_workflow(self, action: StartWorkflow, s: Snapshot) -> None:
        workflow = WORKFLOWS[action.kind]
        options = {"digest": s.digest, **action.options}   # the members workflow brings its own
        if action.kind == "teardown":
            self._drain()
        if action.kind == SWITCHOVER.kind:   # consumed: a failed switchover is not retried on its own
            clear_switchover(self.app.store, current_deployment(self.app.store), self.lease.check)

        def work():
            try:
                result = run_workflow(self.app, workflow, options, fence=self.lease.check,
                                      on_progress=lambda m: log.info("%s", m))
                log.info("%s finished: %s%s", action.kind, result.state.value,
                         f" ({result.error})" if result.error else "")
            except EucadbError as exc:
                log.error("%s stopped: %s", action.kind, exc)
            except Exception:  # noqa: BLE001 - a bug outside any step: logged, the loop lives on
                log.exception("%s stopped by an unexpected error; the run resumes on a later cycle", action.kind)
        # A daemon thread: on shutdown the process does not wait for a long step (a DB that never
        # answers); the run is persisted step by step and resumes on the next start, as after kill -9.
        self._workflow = threading.Thread(target=work, name=f"workflow-{action.kind}", daemon=True)
        self._workflow.start()

    def _set_services(self, action: SetServices) -> None:
        if action.drain:
            self._drain()
        for name, status in self.services.all().items():
            if not status.admin_disabled:
                self.services.set(name, action.state, action.reason)

    def _drain(self) -> None:
        """The leader drains its pools and withdraws the endpoint it published, so followers drain too."""
        self.pools.drain()
        deployment = current_deployment(self.app.store, create=False)
        if deployment:
            withdraw(self.app.store, deployment, self.lease.check)

    def _swap_pools(self, action: SwapPools, s: Snapshot) -> str:
        """Build, verify and swap in pools for `action.address`. The leader first migrates the remote
        schemas and, once swapped, publishes the address; a follower only swaps (the states and the
        schemas are the leader's)."""
        if s.leader:
            for name, status in s.services.items():
                self.services.set(name, self._while_swapping(status.state, s), action.reason)
        deployment = current_deployment(self.app.store, create=False)
        vault = self.app.vault(deployment)
        creds, endpoint = vault.db_logins(), vault.db_endpoint(action.address)
        props = s.properties
        settings = PoolSettings(props[WORKER + "pool_size"], props[WORKER + "pool_max_overflow"],
                                props[WORKER + "pool_timeout"])
        target = RemoteTarget(endpoint, settings, s.pool_digest)
        try:
            if s.leader:
                admin = creds[ADMIN]
                for ctx in REMOTE:
                    migrate_remote(ctx, endpoint, admin["user"], admin["password"])
            self.pools.swap(target, {c.name: (creds[c.writer]["user"], creds[c.writer]["password"])
                                     for c in REMOTE})
        except DatabaseError as exc:
            self._failures += 1
            self._last_health_error = str(exc)
            return f"pools not swapped to {action.address}: {exc}"
        self._failures, self._last_health_error, self._proven = 0, "", True
        if s.leader and s.instance is not None:   # which instance (and generation) the pools serve
            self._pool_instance = (s.instance.instance_id, s.generation)
        self.cluster = self.pools.cluster()
        self._last_health = time.monotonic()
        if s.leader:
            publish(self.app.store, deployment, action.address, self.lease.token or 0, self.lease.check)
        return action.reason

    def _while_swapping(self, state: ServiceState, s: Snapshot) -> ServiceState:
        """Services cannot serve while their pools move: ENABLED ones are DEGRADED, and after
        `unhealthy_limit` failed attempts everything is DISABLED until a swap succeeds."""
        if self._failures >= s.unhealthy_limit:
            return ServiceState.DISABLED
        if state in (ServiceState.ENABLED, ServiceState.DEGRADED):
            return ServiceState.DEGRADED
        return ServiceState.ENABLING

    # --- cycle -----------------------------------------------------------------------------------
    def cycle(self) -> str:
        with self._lock:
            started = time.monotonic()
            acted = True
            try:
                snapshot = self.observe()
                action = decide(snapshot)
                acted = not isinstance(action, Idle)
                sentence = self.act(action, snapshot)
                self.last_snapshot = snapshot
            except EucadbError as exc:
                sentence = f"cycle failed: {exc}"
            except Exception as exc:  # noqa: BLE001 - a bug must show in /status, not only in a log
                log.exception("reconcile cycle crashed")
                sentence = f"cycle failed unexpectedly: {type(exc).__name__}: {exc}"
            self.cycle_seconds = time.monotonic() - started
            self.cycles += 1
            if acted or sentence != self.last_sentence:  # a steady state is logged once
                log.info("%s", sentence)
            self.last_sentence = sentence
            return sentence

    def start(self) -> None:
        self._scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler.add_job(self.cycle, "interval", seconds=self.app.config["loop.interval"],
                                next_run_time=datetime.now())
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler:
            self._scheduler.shutdown(wait=False)
        self.pools.drain()
        if self.lease.token is not None:
            try:
                # Only the leader publishes states: without a server nothing serves the APIs.
                for name in self.services.all():
                    self.services.set(name, ServiceState.DISABLED, "eucadb serve stopped")
                self.lease.release()
            except DatabaseError as exc:
                log.warning("could not release the lease: %s", exc)

