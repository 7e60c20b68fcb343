"""/metrics through prometheus_client: one collector reading the status document at scrape time,
registered in a CollectorRegistry of its own per ServeApp (never the process-global one)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, Metric,
                                    StateSetMetricFamily)

from eucadb.bootstrap.services import STATE_NUMBER, ServiceState
from eucadb.serve.admission import Admission

POOL_KINDS = ("checked_out", "checked_in", "overflow")
CONTENT_TYPE = CONTENT_TYPE_LATEST


class StatusCollector:
    def __init__(self, document: Callable[[], dict], admission: Admission):
        self.document, self.admission = document, admission

    def collect(self) -> Iterator[Metric]:
        doc = self.document()
        number = GaugeMetricFamily("eucadb_service_state", "Service state (0=DISABLED 1=NOTREADY 2=ENABLING "
                                   "3=ENABLED 4=DEGRADED).", labels=["service"])
        status = StateSetMetricFamily("eucadb_service_status", "Service state, one series per state.",
                                      labels=["service"])
        for name, svc in doc["services"].items():
            state = ServiceState(svc["state"])
            number.add_metric([name], STATE_NUMBER[state])
            status.add_metric([name], {s.value: s is state for s in ServiceState})
        yield number
        yield status
        yield GaugeMetricFamily("eucadb_ready", "1 when every service is ENABLED and a server runs.",
                                value=int(doc["ready"]))
        yield GaugeMetricFamily("eucadb_api_in_flight", "Service API requests being served.",
                                value=self.admission.in_flight)
        yield CounterMetricFamily("eucadb_api_shed", "Service API requests answered 503 at the "
                                  "concurrency limit.", value=self.admission.shed)
        loop = doc.get("loop")
        if loop:
            yield CounterMetricFamily("eucadb_loop_cycles", "Reconcile cycles run.", value=loop["cycles"])
            yield GaugeMetricFamily("eucadb_loop_duration_seconds", "Duration of the last reconcile cycle.",
                                    value=loop["cycle_seconds"])
            yield GaugeMetricFamily("eucadb_leader", "1 when this process holds the leader lease.",
                                    value=int(loop["leader"]))
            yield CounterMetricFamily("eucadb_db_operations_severed", "Remote operations cut by the "
                                      "client-side deadline (frozen database).", value=doc["severed_operations"])
        pools = GaugeMetricFamily("eucadb_pool_connections", "Connections per remote context and kind.",
                                  labels=["context", "kind"])
        for ctx, stats in (doc.get("pools") or {}).items():
            for kind in POOL_KINDS:
                pools.add_metric([ctx, kind], stats[kind])
        yield pools
        yield from _archiver((doc.get("database") or {}).get("archiver"))
        yield from _members(doc.get("members") or [])
        run = doc.get("workflow")
        steps = GaugeMetricFamily("eucadb_workflow_step_seconds", "Duration of each step of the latest run.",
                                  labels=["kind", "step"])
        for step in (run or {}).get("steps", []):
            if step["seconds"] is not None:
                steps.add_metric([run["kind"], step["name"]], step["seconds"])
        yield steps


def _members(members: list[dict]) -> Iterator[Metric]:
    """Per replication member: is it the primary, is it streaming, how far behind (bytes, seconds)."""
    if not members:
        return
    primary = GaugeMetricFamily("eucadb_member_primary", "1 for the member that is the primary.",
                                labels=["member"])
    streaming = GaugeMetricFamily("eucadb_member_streaming", "1 when the replica streams from the primary.",
                                  labels=["member"])
    lag = GaugeMetricFamily("eucadb_member_lag_bytes", "WAL bytes the member has not received yet.",
                            labels=["member"])
    seconds = GaugeMetricFamily("eucadb_member_lag_seconds", "Seconds of replay lag of the member.",
                                labels=["member"])
    for m in members:
        primary.add_metric([m["name"]], 1 if m["role"] == "primary" else 0)
        streaming.add_metric([m["name"]], 1 if m["state"] == "streaming" else 0)
        if m.get("lag_bytes") is not None:
            lag.add_metric([m["name"]], m["lag_bytes"])
        if m.get("lag_seconds") is not None:
            seconds.add_metric([m["name"]], m["lag_seconds"])
    yield from (primary, streaming, lag, seconds)


def _archiver(archiver: dict | None) -> Iterator[Metric]:
    """WAL archiving as pg_stat_archiver last reported it (absent until a health check read it):
    alert on failures rising, or on the last archived segment getting old."""
    if not archiver or archiver.get("error"):
        return
    yield CounterMetricFamily("eucadb_wal_archived", "WAL segments the database archived to the backup "
                              "bucket (since its statistics were reset).", value=archiver["archived_count"])
    yield CounterMetricFamily("eucadb_wal_archive_failures", "Failed WAL archive attempts.",
                              value=archiver["failed_count"])
    if archiver["last_archived_time"]:
        yield GaugeMetricFamily("eucadb_wal_last_archived_timestamp_seconds", "When the last WAL segment "
                                "was archived (Unix time, the database's clock).",
                                value=datetime.fromisoformat(archiver["last_archived_time"]).timestamp())


def registry_for(document: Callable[[], dict], admission: Admission) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(document, admission))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
