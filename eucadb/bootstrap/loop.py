"""The reconcile loop: observe → decide (pure) → act, one sentence per cycle (DESIGN §8).

Scheduled by APScheduler every `loop.interval` seconds; a cycle never overlaps the next one. The
workflow runs on its own thread so cycles stay short and keep reporting progress while it works.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from eucadb.bootstrap.decide import (Action, Idle, MaintainPartitions, SetServices, StartWorkflow,
                                     SwapPools, decide)
from eucadb.bootstrap.lease import LeaderLease
from eucadb.bootstrap.observe import (LAUNCH_INPUTS, POOL_INPUTS, certificate_due, digest, instance_facts,
                                     latest_run)
from eucadb.bootstrap.services import ServiceRegistry, ServiceState
from eucadb.bootstrap.snapshot import DbHealth, Snapshot
from eucadb.errors import CloudError, DatabaseError, EucadbError
from eucadb.pool.contexts import REMOTE
from eucadb.pool.manager import PoolManager, PoolSettings, RemoteTarget
from eucadb.pool.migrate import maintain_partitions, migrate_remote
from eucadb.properties.registry import WORKER
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.launch import LAUNCH, TEARDOWN
from eucadb.workflow.service import run_workflow

log = logging.getLogger("eucadb.loop")
WORKFLOWS = {"launch": LAUNCH, "teardown": TEARDOWN}


def _today() -> date:
    return datetime.now(timezone.utc).date()


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
        self._maintained_on: date | None = None
        self._lock = threading.Lock()
        self.last_sentence = "starting"
        self.last_snapshot: Snapshot | None = None
        self.cycle_seconds = 0.0
        self.cycles = 0
        self._scheduler: BackgroundScheduler | None = None

    # --- observe ---------------------------------------------------------------------------------
    def observe(self) -> Snapshot:
        leader = self.lease.acquire()
        holder = self.lease.current()
        props = self.app.properties.values()
        deployment = current_deployment(self.app.store)
        cloud_error, instance = None, None
        if not self.app.clients.configured:
            cloud_error = "no cloud configured"
        else:
            try:
                instance = instance_facts(self.app.clients, deployment)
            except CloudError as exc:
                cloud_error = str(exc)
        target = self.pools.target
        vault = self.app.vault(deployment)
        logins = vault.credentials_digest()
        return Snapshot(
            leader=leader, leader_holder=holder.holder if holder else "", properties=props,
            digest=digest(props, LAUNCH_INPUTS), pool_digest=f"{digest(props, POOL_INPUTS)}:{logins}",
            run=latest_run(self.app.store, deployment),
            workflow_busy=self._workflow is not None and self._workflow.is_alive(),
            instance=instance, pool_address=target.endpoint.address if target else None,
            pool_settings_digest=target.settings_digest if target else None,
            db=self._health(props), services=self.services.all(), cloud_error=cloud_error,
            unhealthy_limit=3, relaunch_after=max(30.0, self.app.config["loop.interval"] * 6),
            maintenance_due=target is not None and self._maintained_on != _today(),
            certificate_due=certificate_due(vault), credentials_digest=logins)

    def _health(self, props) -> DbHealth:
        if self.pools.target is None:
            return DbHealth(ok=None, failures=self._failures)
        now = time.monotonic()
        if now - self._last_health >= props[WORKER + "health_interval"]:
            self._last_health = now
            error = self.pools.check()
            self._failures = 0 if error is None else self._failures + 1
            self._last_health_error = error or ""
        return DbHealth(ok=self._failures == 0, error=self._last_health_error, failures=self._failures)

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
        return action.reason

    def _maintain_partitions(self, action: MaintainPartitions) -> str:
        target = self.pools.target
        deployment = current_deployment(self.app.store)
        admin = self.app.vault(deployment).db_logins()[ADMIN]
        try:
            created, dropped = maintain_partitions(target.endpoint, admin["user"], admin["password"], _today())
        except DatabaseError as exc:
            return f"partition maintenance failed (retried next cycle): {exc}"
        self._maintained_on = _today()
        return f"{action.reason}: {len(created)} created, {len(dropped)} dropped"

    def _start_workflow(self, action: StartWorkflow, s: Snapshot) -> None:
        workflow = WORKFLOWS[action.kind]
        options = {**action.options, "digest": s.digest}
        if action.kind == "teardown":
            self.pools.drain()

        def work():
            try:
                result = run_workflow(self.app, workflow, options, fence=self.lease.check,
                                      on_progress=lambda m: log.info("%s", m))
                log.info("%s finished: %s%s", action.kind, result.state.value,
                         f" ({result.error})" if result.error else "")
            except EucadbError as exc:
                log.error("%s stopped: %s", action.kind, exc)
        # A daemon thread: on shutdown the process does not wait for a long step (a DB that never
        # answers); the run is persisted step by step and resumes on the next start, as after kill -9.
        self._workflow = threading.Thread(target=work, name=f"workflow-{action.kind}", daemon=True)
        self._workflow.start()

    def _set_services(self, action: SetServices) -> None:
        if action.drain:
            self.pools.drain()
        for name, status in self.services.all().items():
            if not status.admin_disabled:
                self.services.set(name, action.state, action.reason)

    def _swap_pools(self, action: SwapPools, s: Snapshot) -> str:
        for name, status in s.services.items():
            self.services.set(name, self._while_swapping(status.state, s), action.reason)
        deployment = current_deployment(self.app.store)
        creds = self.app.vault(deployment).db_logins()
        endpoint = self.app.vault(deployment).db_endpoint(action.address)
        props = s.properties
        settings = PoolSettings(props[WORKER + "pool_size"], props[WORKER + "pool_max_overflow"],
                                props[WORKER + "pool_timeout"])
        target = RemoteTarget(endpoint, settings, s.pool_digest)
        try:
            admin = creds[ADMIN]
            for ctx in REMOTE:
                migrate_remote(ctx, endpoint, admin["user"], admin["password"])
            self.pools.swap(target, {c.name: (creds[c.writer]["user"], creds[c.writer]["password"])
                                     for c in REMOTE})
        except DatabaseError as exc:
            self._failures += 1
            self._last_health_error = str(exc)
            return f"pools not swapped to {action.address}: {exc}"
        self._failures, self._last_health_error = 0, ""
        self._last_health = time.monotonic()
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

