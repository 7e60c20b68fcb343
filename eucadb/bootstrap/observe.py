"""Building the cycle's snapshot: one read of the store, the cloud and the database."""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Mapping

from botocore.exceptions import ClientError

from eucadb.bootstrap.snapshot import InstanceView, RunView
from eucadb.errors import CloudError
from eucadb.properties.registry import PROPERTIES, OnChange, WORKER
from eucadb.workflow import pki
from eucadb.workflow.deployment import Names
from eucadb.workflow.engine import RunState, history
from eucadb.workflow.service import LIFECYCLE_KINDS
from eucadb.workflow.steps.launch_template import LaunchTemplateStep

LAUNCH_INPUTS = (OnChange.ROLL_INSTANCE,)
POOL_INPUTS = (OnChange.REBUILD_POOLS,)
MEMBER_INPUTS = (OnChange.MEMBERS,)
# what else the replicas' templates and the primary's standby list follow
MEMBER_EXTRA = (WORKER + "synchronous", WORKER + "volume_size")


def digest(properties: Mapping[str, Any], kinds: tuple[OnChange, ...], extra: tuple[str, ...] = ()) -> str:
    """A digest of the values of the properties whose change needs `kinds` of action."""
    chosen = {p.name: properties[p.name] for p in PROPERTIES if p.on_change in kinds or p.name in extra}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def members_digest(properties: Mapping[str, Any], launch: RunView | None, primary_address: str | None,
                   generation: int) -> str:
    """What the replicas depend on: their properties, the launch they follow (its template inputs),
    the primary's address and the replication set's generation."""
    inputs = [digest(properties, MEMBER_INPUTS, MEMBER_EXTRA), launch.id if launch else None,
              launch.digest if launch else None, primary_address, generation]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]


def latest_run(store, deployment: str, kinds: tuple[str, ...] = LIFECYCLE_KINDS) -> RunView | None:
    """The newest run of `kinds`: launch/teardown (the lifecycle), or the members workflow's."""
    runs = history(store, deployment=deployment, kinds=kinds)
    if not runs:
        return None
    run = runs[0]
    steps = run["steps"]
    current = next((i for i, st in enumerate(steps) if st["state"] in ("running", "failed", "pending")),
                   len(steps) - 1)
    title = steps[current]["name"].replace("_", " ") if steps else ""
    finished = run["finished_at"]
    age = 0.0 if finished is None else max(0.0, time.time() - _epoch(finished))
    options = run["options"]
    delivered = next((st["resources"].get("credentials_digest", "") for st in steps
                      if st["name"] == LaunchTemplateStep.name), "")
    return RunView(run["run"], run["kind"], RunState(run["state"]), current + 1, len(steps), title, run["error"],
                   options.get("digest", ""), age, delivered, options)


def _epoch(ts) -> float:
    from datetime import timezone
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def instance_facts(clients, deployment: str, group: str | None = None) -> InstanceView | None:
    """The database instance the autoscaling group runs now (None if there is none).

    Prefers an in-service, running instance the group has not been told is unhealthy: while a marked
    one is being replaced, its successor is the one to watch."""
    name = group or Names(deployment).db   # the primary member's group (member 0 unless failed over)
    try:
        groups = clients.call("autoscaling", "describe_auto_scaling_groups",
                              AutoScalingGroupNames=[name])["AutoScalingGroups"]
        members = {i["InstanceId"]: i for g in groups for i in g.get("Instances", [])}
        if not members:
            return None
        reservations = clients.call("ec2", "describe_instances", InstanceIds=list(members))["Reservations"]
    except ClientError as exc:
        raise CloudError(str(exc)) from None
    now = time.time()
    views = [InstanceView(i["InstanceId"], i.get("PrivateIpAddress"), i["State"]["Name"],
                          members[i["InstanceId"]].get("HealthStatus", "Healthy"),
                          members[i["InstanceId"]].get("LifecycleState", "InService"),
                          max(0.0, now - _epoch(i["LaunchTime"])) if i.get("LaunchTime") else 0.0)
             for r in reservations for i in r["Instances"]]
    order = {"running": 0, "pending": 1}
    views.sort(key=lambda v: (v.marked_unhealthy, order.get(v.state, 9)))
    return views[0] if views else None


def certificate_due(vault) -> str:
    """Why the deployment's certificates need renewing now ("" when they do not, or do not exist yet).

    Renewal is a launch: the certificate step issues a new pair, key delivery and the launch
    template carry it, and the instance is replaced (same data volume) — long before expiry, at
    2/3 of the lifetime, so a failed renewal has weeks to be retried (EUCA-8651)."""
    for read, what in ((vault.ca_cert, "the CA certificate"), (vault.server_cert, "the server certificate")):
        pem = read()
        if pem and pki.needs_renewal(pem):
            expires = pki.load_certificate(pem).not_valid_after_utc
            return f"{what} expires {expires:%Y-%m-%d %H:%M} UTC (past 2/3 of its lifetime)"
    return ""


__all__ = ["digest", "latest_run", "instance_facts", "certificate_due", "LAUNCH_INPUTS", "POOL_INPUTS", "WORKER"]
