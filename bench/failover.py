#!/usr/bin/env python3
"""Time from the loss of the primary (kill -9 of its postmaster) to services ENABLED again, in one
run on one embedded cloud:

  heal       replicas=0: today's path — health window, SetInstanceHealth, the group boots a
             replacement on the same volume, PostgreSQL recovers, pools follow
  failover   replicas=2: health window, the old primary fenced through the cloud, the most advanced
             replica promoted, the other re-pointed, pools follow
  switchover replicas=2: `eucadb switchover` → ENABLED on the target (the writers' pause)

    .venv/bin/python bench/failover.py [--health-interval 1]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from e2e import make_env, sibling, start_cloud  # noqa: E402
from pg import free_port  # noqa: E402
from replication import primary_of, streaming  # noqa: E402
from serving import W, Server, enabled, postmaster_pid  # noqa: E402


def settled(replicas: int):
    if replicas == 0:
        return enabled
    return lambda d: streaming(d, replicas) and d["workflow"]["kind"] == "members" \
        and d["workflow"]["state"] == "succeeded"


def kill_primary(cloud, env, replicas: int, interval: str) -> float:
    """Seconds from kill -9 of the primary's postmaster to ENABLED on another instance."""
    sets = {f"{W}health_interval": interval, f"{W}replicas": str(replicas), f"{W}configured": "true"}
    deployment_env = sibling(cloud, env, **sets)
    server = Server(deployment_env, free_port())
    try:
        doc = server.wait(settled(replicas), 900)
        old = doc["instance"]["instance_id"]
        os.kill(postmaster_pid(cloud, old), signal.SIGKILL)
        started = time.monotonic()
        server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != old, 600)
        lost = time.monotonic() - started
        switched = None
        if replicas:
            server.wait(settled(replicas), 600)
            deployment_env.run("switchover", EUCADB_SERVE_PORT=str(server.port))
            before = primary_of(server.status())["name"]
            started = time.monotonic()
            server.wait(lambda d: enabled(d) and (primary_of(d) or {}).get("name") not in (None, before), 300)
            switched = time.monotonic() - started
        return lost, switched
    finally:
        deployment_env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"] and d["workflow"]["kind"] == "teardown"
                    and d["workflow"]["state"] == "succeeded", 600)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--health-interval", default="1")
    args = parser.parse_args()
    cloud = make_env(Path("/tmp/bench-failover"))
    start_cloud(cloud)
    try:
        heal, _ = kill_primary(cloud, Path("/tmp/bench-heal"), 0, args.health_interval)
        failover, switchover = kill_primary(cloud, Path("/tmp/bench-fo"), 2, args.health_interval)
    finally:
        cloud.run("cloud", "down", check=False)
    print(f"health_interval={args.health_interval}s")
    print(f"heal in place (replicas=0): kill -9 -> ENABLED {heal:6.1f} s")
    print(f"failover      (replicas=2): kill -9 -> ENABLED {failover:6.1f} s   ratio {failover / heal:.2f}")
    print(f"switchover    (replicas=2): request -> ENABLED {switchover:6.1f} s")


if __name__ == "__main__":
    main()
