#!/usr/bin/env python3
"""Backup and restore of a ~1 GiB database against a raw copy of the same data directory, and the
RPO under steady writes. Embedded cloud, real PostgreSQL, real Barman Cloud.

    .venv/bin/python bench/backup_restore.py [--gib 1.0] [--rpo-seconds 60] [--archive-timeout 10]

Prints: `eucadb backup create` (barman-cloud-backup, gzip, to S3) and `eucadb backup restore ID`
(request → new volume → instance restored at boot → services ENABLED) against `cp -a` and
`tar -czf` / `tar -cf` of the live PGDATA on the same disk (the ratios), then the age of the newest
archived WAL sampled every second while a writer commits every 0.1 s (the RPO a restore would see).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from e2e import make_env, sibling, start_cloud  # noqa: E402
from pg import free_port  # noqa: E402
from restoring import address  # noqa: E402
from serving import Server, enabled, writer_connect  # noqa: E402
from eucadb.workflow.credentials import ADMIN  # noqa: E402
from eucadb.workflow.deployment import current_deployment  # noqa: E402

W = "services.database.worker."
ROW_BYTES = 260          # on-disk bytes per row of the filler table (tuple + header + fill)


def admin(env, host: str):
    app = env.app()
    vault = app.vault(current_deployment(app.store))
    login = vault.db_logins()[ADMIN]
    conn = psycopg2.connect(**vault.db_endpoint(host).connect_args(
        login["user"], login["password"], "eucalyptus_cloudwatch_backend"))
    conn.autocommit = True
    return conn


def fill(env, host: str, gib: float) -> str:
    rows = int(gib * (1 << 30) / ROW_BYTES)
    with admin(env, host) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_fill (id bigint, pad text)")
        cur.execute("INSERT INTO bench_fill SELECT g, md5(g::text) || repeat('x', 180) "
                    "FROM generate_series(1, %s) g", (rows,))
        cur.execute("CHECKPOINT")
        cur.execute("SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")
        return cur.fetchone()[0]


def pgdata_of(env) -> Path:
    vols = json.loads(env.run("backup", "volumes", "-o", "json").stdout)
    current = [v for v in vols if v["role"] == "current"][0]["volume_id"]
    return Path(env.data_dir) / "volumes" / current / "pgdata"


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def raw_copies(pgdata: Path, scratch: Path) -> dict[str, float]:
    out = {}
    for name, cmd in (("cp -a", ["cp", "-a", str(pgdata), str(scratch / "cp")]),
                      ("tar -czf", ["tar", "-czf", str(scratch / "data.tgz"), "-C", str(pgdata.parent), pgdata.name]),
                      ("tar -cf", ["tar", "-cf", str(scratch / "data.tar"), "-C", str(pgdata.parent), pgdata.name])):
        out[name] = timed(lambda: subprocess.run(cmd, capture_output=True))   # a live dir: warnings ok
        for leftover in ("cp", "data.tgz", "data.tar"):
            path = scratch / leftover
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return out


def rpo(env, server, seconds: float) -> list[float]:
    """Age of the newest archived WAL segment, sampled every second under steady commits."""
    stop, ages = threading.Event(), []
    host = address(server)

    commits = []

    def writer() -> None:
        with writer_connect(env, host) as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit)"
                            " VALUES (1, now(), 1, 1, 1, 1, 'rpo')")
                conn.commit()
                commits.append(time.monotonic())
                time.sleep(0.1)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with admin(env, host) as conn, conn.cursor() as cur:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT extract(epoch FROM clock_timestamp() - last_archived_time) FROM pg_stat_archiver")
            age = cur.fetchone()[0]
            if age is not None:
                ages.append(float(age))
            time.sleep(1)
    stop.set()
    thread.join(5)
    if not commits:
        raise SystemExit("the RPO writer committed nothing (see above)")
    return ages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rpo-seconds", type=float, default=60)
    parser.add_argument("--archive-timeout", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eucadb-bench-"))
    cloud = start_cloud(make_env(tmp / "cloud"))
    env = sibling(cloud, tmp / "deployment", **{W + "configured": "true", W + "volume_size": "20",
                                                W + "backup.archive_timeout": str(args.archive_timeout)})
    server = Server(env, free_port())
    try:
        server.wait(enabled, 600)
        size = fill(env, address(server), args.gib)
        ages = rpo(env, server, args.rpo_seconds)
        copies = raw_copies(pgdata_of(env), tmp)
        started = time.perf_counter()
        made = json.loads(env.run("backup", "create", "--name", "bench", "-o", "json", timeout=3600).stdout)
        backup_s = time.perf_counter() - started
        started = time.perf_counter()
        env.run("backup", "restore", made["backup_id"], "-o", "json", timeout=3600)
        restore_s = time.perf_counter() - started
        print(f"database: {size}")
        for name, seconds in copies.items():
            print(f"{name:<9} of PGDATA: {seconds:7.1f}s")
        print(f"eucadb backup create:  {backup_s:7.1f}s  (ratio to cp -a {backup_s / copies['cp -a']:.1f}, "
              f"to tar -czf {backup_s / copies['tar -czf']:.1f})")
        print(f"eucadb backup restore: {restore_s:7.1f}s  (request to services ENABLED; ratio to cp -a "
              f"{restore_s / copies['cp -a']:.1f}, to tar -czf {restore_s / copies['tar -czf']:.1f})")
        if ages:
            print(f"RPO (age of the newest archived WAL, archive_timeout={args.archive_timeout}s, "
                  f"{len(ages)} samples): median {statistics.median(ages):.1f}s, max {max(ages):.1f}s")
    finally:
        server.stop()
        env.run("workflow", "teardown", "--delete-volume", check=False)
        cloud.run("cloud", "down", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
