"""The immutable picture one reconcile cycle decides from (docs/architecture.md §8)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from eucadb.backup.archiver import ArchiverView
from eucadb.bootstrap.services import ServiceStatus
from eucadb.workflow.engine import RunState


@dataclass(frozen=True)
class RunView:
    id: int
    kind: str            # the workflow's kind: launch or teardown
    state: RunState
    step: int            # 1-based position of the step running or last reached
    total: int
    step_title: str
    error: str | None
    digest: str          # digest of the properties the run was started with
    age: float           # seconds since the run finished (0 while running)
    credentials_digest: str = ""  # which DB credentials its launch template carries ("" unknown)
    options: Mapping[str, object] = field(default_factory=dict)  # what the run was started with


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    private_ip: str | None
    state: str                   # EC2 state: pending, running, stopping, stopped, shutting-down …
    health: str = "Healthy"      # what the autoscaling group records (Unhealthy once marked)
    lifecycle: str = "InService"  # the group's lifecycle state (Pending, InService, Terminating …)
    age: float = 0.0             # seconds since the instance (re)started: its boot grace runs from here

    @property
    def marked_unhealthy(self) -> bool:
        return self.health.lower() == "unhealthy" or self.lifecycle.startswith("Terminating")


@dataclass(frozen=True)
class DbHealth:
    ok: bool | None      # None: not probed (no instance or no pools yet)
    error: str = ""
    failures: int = 0    # consecutive failed checks of the current instance
    proven: bool = False  # the current instance has passed a check: its boot grace is over


@dataclass(frozen=True)
class Snapshot:
    leader: bool
    leader_holder: str
    properties: Mapping[str, object]
    digest: str                          # digest of the properties a launch depends on, now
    pool_digest: str                     # digest of the pool settings, now
    run: RunView | None
    workflow_busy: bool
    instance: InstanceView | None
    pool_address: str | None
    pool_settings_digest: str | None
    db: DbHealth
    services: Mapping[str, ServiceStatus] = field(default_factory=dict)
    cloud_error: str | None = None
    unhealthy_limit: int = 3             # failed checks before DEGRADED becomes DISABLED
    relaunch_after: float = 60.0         # seconds to wait before retrying a failed launch
    maintenance_due: bool = False        # daily partitions not yet maintained today
    certificate_due: str = ""            # why the CA or server certificate must be renewed ("" if not)
    credentials_digest: str = ""         # the DB credentials in the vault now (digest; "" none yet)
    published_address: str | None = None  # the leader's pool endpoint (what a follower follows)
    health_grace: float = 600.0          # seconds a new instance may take to pass its first check
    archiver: ArchiverView | None = None  # WAL archiving as of the last passed health check
    backup_due: str = ""                 # the scheduled backup's fire time to take now ("" none)
    members_run: RunView | None = None   # the newest run of the members workflow (replicas)
    members_digest: str = ""             # what the replicas depend on, now (observe.members_digest)
    members: tuple = ()                  # bootstrap.members.MemberView per member (leader, replicas only)
    primary_member: int = 0              # which member the store records as the primary
    failover_run: RunView | None = None  # the newest run of the failover workflow
    primary_lsn: int | None = None       # the WAL position the primary was last seen to hold
    switchover: Mapping[str, object] | None = None  # an operator's pending `eucadb switchover`
    switchover_run: RunView | None = None
    generation: int = 1                  # the replication set's generation (bumped by each promotion)
    pool_instance: tuple | None = None   # (instance id, generation) the leader's pools were built for
