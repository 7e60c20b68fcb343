#!/usr/bin/env python3
"""Bootstrapper timings against the bare baseline, run side by side on the same machine:

(a) `configured=true` → both services ENABLED (launch, TLS verify, pools, remote migrations), vs the
    bare initdb + pg_ctl start + createdb ×2 of bench/launch_vs_bare.py;
(b) database instance terminated → services ENABLED again on the replacement (same volume).

    .venv/bin/python bench/enable_vs_bare.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import EUCADB, make_env, sibling, start_cloud  # noqa: E402
from launch_vs_bare import bare  # noqa: E402
from pg import free_port  # noqa: E402

W = "services.database.worker."
FAST = {"EUCADB_LOOP_INTERVAL": "0.5", "EUCADB_RETRY_TIMEOUT": "3", "EUCADB_LEASE_TTL": "8"}


def status(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=3) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


def wait(port: int, predicate, timeout: float = 300) -> tuple[float, dict]:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        doc = status(port)
        if doc and predicate(doc):
            return time.perf_counter() - start, doc
        time.sleep(0.05)
    raise SystemExit("timed out")


def one_round(cloud, tmp: Path) -> tuple[float, float]:
    env = sibling(cloud, tmp, **{f"{W}health_interval": "1"})
    port = free_port()
    proc = subprocess.Popen([EUCADB, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env.environ(EUCADB_SERVE_PORT=str(port), **FAST))
    try:
        wait(port, lambda d: "loop" in d)
        env.run("property", "set", f"{W}configured=true")
        enable, doc = wait(port, lambda d: d["ready"])
        first = doc["database"]["endpoint"]
        env.client("ec2").terminate_instances(InstanceIds=[doc["instance"]["instance_id"]])
        recover, _ = wait(port, lambda d: d["ready"] and d["database"]["endpoint"] != first)
        env.run("property", "set", f"{W}configured=false")
        wait(port, lambda d: (d.get("workflow") or {}).get("kind") == "teardown"
             and d["workflow"]["state"] == "succeeded")
        return enable, recover
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eucadb-bench-"))
    cloud = start_cloud(make_env(tmp / "cloud"))
    try:
        bare_t, enable_t, recover_t = [], [], []
        for i in range(args.rounds):
            bare_t.append(bare(tmp))
            enable, recover = one_round(cloud, tmp / f"round{i}")
            enable_t.append(enable)
            recover_t.append(recover)
        b = statistics.median(bare_t)
        fmt = lambda xs: ["%.2f" % x for x in xs]  # noqa: E731
        print(f"bare initdb+start+createdb×2:      median {b:.2f}s {fmt(bare_t)}")
        print(f"(a) configured=true → ENABLED:     median {statistics.median(enable_t):.2f}s {fmt(enable_t)}"
              f"  ratio {statistics.median(enable_t) / b:.2f}")
        print(f"(b) instance terminated → ENABLED: median {statistics.median(recover_t):.2f}s {fmt(recover_t)}"
              f"  ratio {statistics.median(recover_t) / b:.2f}")
    finally:
        cloud.run("cloud", "down", check=False)


if __name__ == "__main__":
    main()
