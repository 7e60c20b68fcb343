"""The status document: one structure behind `eucadb status`, `/status` (JSON and HTML) and /metrics."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from eucadb.bootstrap.preconditions import unmet
from eucadb.bootstrap.services import ServiceRegistry, ServiceState
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.engine import history


def fetch_live(config) -> dict | None:
    """The running server's status document, or None when no server answers."""
    url = f"http://{config['serve.host']}:{config['serve.port']}/status"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def build(app, loop=None) -> dict[str, Any]:
    """Everything an operator asks first. With `loop` (inside serve) it adds the live view."""
    deployment = current_deployment(app.store, create=False)
    services = ServiceRegistry(app.store).all()
    runs = history(app.store, deployment=deployment) if deployment else []
    doc: dict[str, Any] = {
        "deployment": deployment,
        "ready": all(s.state is ServiceState.ENABLED for s in services.values()),
        "services": {n: s.as_dict() for n, s in services.items()},
        "workflow": runs[0] if runs else None,
        "cloud": app.config["cloud.endpoint_url"],
    }
    if loop is not None:
        snap = loop.last_snapshot
        doc["loop"] = {"sentence": loop.last_sentence, "cycles": loop.cycles,
                       "cycle_seconds": round(loop.cycle_seconds, 3),
                       "leader": bool(snap and snap.leader),
                       "leader_holder": snap.leader_holder if snap else None}
        doc["unmet_preconditions"] = unmet(snap) if snap else []
        doc["instance"] = (snap.instance.__dict__ if snap and snap.instance else None)
        target = loop.pools.target
        doc["database"] = {
            "endpoint": f"{target.endpoint.address}:{target.endpoint.port}" if target else None,
            "dns_name": target.endpoint.dns_name if target else None,
            "healthy": snap.db.ok if snap else None, "error": snap.db.error if snap else "",
            "failed_checks": snap.db.failures if snap else 0}
        doc["pools"] = loop.pools.stats()
    doc["generated_at"] = time.time()
    return doc
