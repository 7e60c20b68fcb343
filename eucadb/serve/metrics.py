"""Prometheus text exposition of the status document (states, loop, pools, workflow timings)."""
from __future__ import annotations

from eucadb.bootstrap.services import STATE_NUMBER, ServiceState


def render(doc: dict) -> str:
    lines = [
        "# HELP eucadb_service_state Service state (0=DISABLED 1=NOTREADY 2=ENABLING 3=ENABLED 4=DEGRADED).",
        "# TYPE eucadb_service_state gauge",
    ]
    for name, svc in doc["services"].items():
        lines.append(f'eucadb_service_state{{service="{name}"}} {STATE_NUMBER[ServiceState(svc["state"])]}')
    lines += ["# HELP eucadb_ready 1 when every service is ENABLED.", "# TYPE eucadb_ready gauge",
              f"eucadb_ready {int(doc['ready'])}"]
    loop = doc.get("loop")
    if loop:
        lines += ["# HELP eucadb_loop_cycles_total Reconcile cycles run.", "# TYPE eucadb_loop_cycles_total counter",
                  f"eucadb_loop_cycles_total {loop['cycles']}",
                  "# HELP eucadb_loop_duration_seconds Duration of the last reconcile cycle.",
                  "# TYPE eucadb_loop_duration_seconds gauge",
                  f"eucadb_loop_duration_seconds {loop['cycle_seconds']}",
                  "# HELP eucadb_leader 1 when this process holds the leader lease.",
                  "# TYPE eucadb_leader gauge", f"eucadb_leader {int(loop['leader'])}"]
    pools = doc.get("pools") or {}
    if pools:
        lines += ["# HELP eucadb_pool_connections Connections per remote context and kind.",
                  "# TYPE eucadb_pool_connections gauge"]
        for ctx, stats in pools.items():
            for kind in ("checked_out", "checked_in", "overflow"):
                lines.append(f'eucadb_pool_connections{{context="{ctx}",kind="{kind}"}} {stats[kind]}')
    run = doc.get("workflow")
    if run:
        lines += ["# HELP eucadb_workflow_step_seconds Duration of each step of the latest run.",
                  "# TYPE eucadb_workflow_step_seconds gauge"]
        for step in run["steps"]:
            if step["seconds"] is not None:
                name = step["name"]
                lines.append(f'eucadb_workflow_step_seconds{{kind="{run["kind"]}",step="{name}"}} {step["seconds"]}')
    return "\n".join(lines) + "\n"
