"""The status document: one structure behind `eucadb status`, `/status` (JSON and HTML) and /metrics.

Inside `eucadb serve` (with `loop`) it is the live view. Without one it is built from the store, and
then it says so: the states are whatever the last server recorded, `ready` is false (nothing is
serving), and `server.states_as_of` tells since when nobody has vouched for them.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

from eucadb import local_server
from eucadb.bootstrap.lease import LeaderLease
from eucadb.bootstrap.preconditions import unmet
from eucadb.bootstrap.services import ServiceRegistry, ServiceState
from eucadb.errors import EucadbError
from eucadb.services.cloudwatch.api import MOUNT as CLOUDWATCH_MOUNT
from eucadb.services.reporting.api import PREFIX as REPORTING_PREFIX
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import history

SERVICE_PATHS = {"cloudwatch": CLOUDWATCH_MOUNT, "reporting": REPORTING_PREFIX}


def base_url(config) -> str:
    """The endpoint as configured (a wildcard host shown as such), with the scheme served."""
    return f"{'https' if local_server.tls_enabled(config) else 'http'}://{config['serve.host']}:{config['serve.port']}"


def fetch_live(config) -> dict | None:
    """The running server's status document, or None when no server answers."""
    try:
        context = local_server.client_context(config)
        with urllib.request.urlopen(local_server.base_url(config) + "/status", timeout=3, context=context) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError, EucadbError):
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def offline_server(app, services: dict) -> dict[str, Any]:
    """What is known when no server answers: the last lease renewal (the leader renews it every
    cycle, so it is when states were last vouched for), else the newest service record."""
    lease = LeaderLease(app.store, ttl=app.config["lease.ttl"]).current()
    doc: dict[str, Any] = {"running": False, "url": base_url(app.config), "states_as_of": None,
                           "as_of_source": None, "lease_holder": lease.holder if lease else None}
    if lease and lease.expires_at > 0:   # 0: released by a clean shutdown
        doc["states_as_of"] = _iso(lease.expires_at - app.config["lease.ttl"])
        doc["as_of_source"] = "last leader lease renewal"
        doc["lease_expires_at"] = _iso(lease.expires_at)
    else:
        stamps = [s.since for s in services.values() if s.since]
        if stamps:
            newest = max(s if s.tzinfo else s.replace(tzinfo=timezone.utc) for s in stamps)
            doc["states_as_of"] = newest.isoformat(timespec="seconds")
            doc["as_of_source"] = "last service state change"
    return doc


def build(app, loop=None) -> dict[str, Any]:
    """Everything an operator asks first; never touches the remote database (it must answer while
    that database hangs). With `loop` (inside serve) it adds the live view."""
    deployment = current_deployment(app.store, create=False)
    services = ServiceRegistry(app.store).all()
    runs = history(app.store, deployment=deployment) if deployment else []
    url = base_url(app.config)
    all_enabled = all(s.state is ServiceState.ENABLED for s in services.values())
    doc: dict[str, Any] = {
        "deployment": deployment,
        # ready = this server can answer the APIs: the leader published ENABLED and its own pools exist
        # (a follower that has not built them yet must not take traffic from a load balancer)
        "ready": all_enabled and loop is not None and loop.pools.target is not None,
        "services": {n: s.as_dict() for n, s in services.items()},
        "endpoints": {n: url + path for n, path in SERVICE_PATHS.items()},
        "workflow": runs[0] if runs else None,
        "cloud": app.config["cloud.endpoint_url"],
    }
    if loop is None:
        doc["server"] = offline_server(app, services)
    else:
        doc["server"] = {"running": True, "url": url}
        snap = loop.last_snapshot
        doc["loop"] = {"sentence": loop.last_sentence, "cycles": loop.cycles,
                       "cycle_seconds": round(loop.cycle_seconds, 3),
                       "leader": bool(snap and snap.leader),
                       "leader_holder": snap.leader_holder if snap else None}
        doc["unmet_preconditions"] = unmet(snap) if snap else []
        doc["instance"] = (dict(snap.instance.__dict__) if snap and snap.instance else None)
        target = loop.pools.target
        doc["database"] = {
            "endpoint": f"{target.endpoint.address}:{target.endpoint.port}" if target else None,
            "dns_name": target.endpoint.dns_name if target else None,
            "healthy": snap.db.ok if snap else None, "error": snap.db.error if snap else "",
            "failed_checks": snap.db.failures if snap else 0,
            "cluster": loop.cluster.as_dict() if target and loop.cluster else None,
            "archiver": snap.archiver.as_dict() if snap and snap.archiver else None}
        doc["backups"] = loop.backups.status(snap.archiver.last_archived_time
                                             if snap and snap.archiver else None)
        doc["members"] = [m.as_dict() for m in snap.members] if snap else []
        doc["pools"] = loop.pools.stats()
        doc["severed_operations"] = loop.pools.watchdog.severed
    doc["generated_at"] = time.time()
    return doc
