"""A frozen database cannot freeze eucadb (real cloud, real PostgreSQL, boto3 as installed).

The instance's PostgreSQL processes are SIGSTOPped (they keep their sockets: the kernel still accepts
and acknowledges, nothing ever answers) while 16 threads write metrics. The probes must answer within
a second throughout, the writers must get errors in bounded time instead of hanging, and after SIGCONT
the services come back ENABLED and writes succeed again."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from e2e import module_cloud, sibling
from serving import W, Server, enabled, postgres_pids
from pg import free_port

pytestmark = pytest.mark.slow
cloud = module_cloud("frozen", **{f"{W}health_interval": "1"})
FREEZE_SECONDS = float(os.environ.get("EUCADB_TEST_FREEZE_SECONDS", "60"))   # as long as the judged outage
WRITERS = 16
PROBE_BOUND = 1.0       # the requirement for /healthz and /status
WRITER_BOUND = 15.0     # the pool's client-side bound (statement_timeout + 2 s) plus the checkout ping


def cloudwatch(env, port: int):
    key = json.loads(env.run("credentials", "create", "-o", "json").stdout)
    return boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}/services/CloudWatch",
                        region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                        aws_secret_access_key=key["secret_access_key"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                      connect_timeout=5, read_timeout=60, max_pool_connections=WRITERS))


def put(cw) -> None:
    cw.put_metric_data(Namespace="Frozen", MetricData=[
        {"MetricName": "Load", "Value": 1.0, "Timestamp": datetime.now(timezone.utc)}])


class Writers:
    """WRITERS threads calling PutMetricData back to back; each call's latency and outcome."""

    def __init__(self, cw):
        self.cw, self.stop, self.calls = cw, threading.Event(), []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(WRITERS)]

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                put(self.cw)
                outcome = "ok"
            except ClientError as err:
                outcome = err.response["Error"]["Code"]
            except Exception as exc:  # noqa: BLE001 — a timeout or reset is an outcome to report
                outcome = type(exc).__name__
            self.calls.append((started, time.monotonic() - started, outcome))
            if outcome != "ok":
                time.sleep(0.05)

    def __enter__(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(WRITER_BOUND + 60)


class Probes:
    """/healthz and /status every 0.5 s: latency and status code of each."""

    def __init__(self, server: Server):
        self.server, self.stop, self.seen = server, threading.Event(), []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for path in ("/healthz", "/status"):
                started = time.monotonic()
                code, _ = self.server.get(path, timeout=10)
                self.seen.append((path, code, time.monotonic() - started))
            time.sleep(0.5)

    def __enter__(self) -> "Probes":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)


def freeze(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass   # a backend that ended on its own meanwhile: nothing of it left to freeze


def thaw(pids: list[int]) -> bool:
    """SIGCONT what is left; True when the processes are gone (the instance was replaced)."""
    gone = False
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            gone = True
    return gone


def test_probes_answer_and_writers_fail_fast_while_the_database_is_frozen(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        doc = server.wait(enabled, 180)
        cw = cloudwatch(env, server.port)
        put(cw)
        pids = postgres_pids(cloud, doc["instance"]["instance_id"])
        assert len(pids) >= 3, f"PostgreSQL processes of the instance: {pids}"
        with Probes(server) as probes, Writers(cw) as writers:
            time.sleep(2)   # writing at full speed against a live database first
            frozen_at = time.monotonic()
            freeze(pids)
            try:
                time.sleep(FREEZE_SECONDS)
            finally:
                replaced = thaw(pids)
            thawed_at = time.monotonic()
        during = [c for c in writers.calls if frozen_at <= c[0] < thawed_at]
        errors = sorted(latency for _, latency, outcome in during if outcome != "ok")
        worst = {path: max(lat for p, _, lat in probes.seen if p == path) for path in ("/healthz", "/status")}
        print(f"\nfrozen {FREEZE_SECONDS:.0f}s: probes max latency {worst}; writer calls {len(during)}, "
              f"errors {len(errors)} (p50 {errors[len(errors) // 2]:.3f}s, max {errors[-1]:.3f}s), "
              f"outcomes {sorted({o for _, _, o in during})}; instance replaced meanwhile: {replaced}")
        assert all(code == 200 for _, code, _ in probes.seen), [s for s in probes.seen if s[1] != 200]
        assert max(worst.values()) < PROBE_BOUND, worst
        assert {o for _, _, o in during} <= {"ok", "ServiceUnavailable"}, "writers got 503s, nothing else"
        assert max(latency for _, latency, _ in during) < WRITER_BOUND, "no writer call hung"
        assert errors[len(errors) // 2] < PROBE_BOUND, "most refusals are immediate"

        # Thawed, or — a freeze longer than the health window — replaced by its group on the same volume
        # (the leader marked it unhealthy): either way the services come back by themselves.
        doc = server.wait(enabled, 180)
        put(cw)
        assert all(s["state"] == "ENABLED" for s in doc["services"].values())
    finally:
        assert server.stop() == 0
