#!/usr/bin/env python3
"""Backup, restore and RPO of the remote database, side by side with a raw copy of the same data:

  backup    `eucadb backup create` (Barman Cloud on the instance → the embedded cloud's S3, gzip)
            vs `tar -cf` and `cp -a` of the same PGDATA on the same disk
  restore   barman-cloud-restore + WAL replay to "now" + promote, until PostgreSQL accepts
            vs `tar -xf` of that tarball + pg_ctl start (crash recovery), until PostgreSQL accepts
  RPO       under steady writes: the age of the newest archived WAL segment, sampled once a second
            (an upper bound of what a lost volume would lose), archive_timeout 10 s and the default 60 s

The raw baselines copy a running cluster (consistent only through crash recovery): they measure the
same bytes moved on the same disk, not an equally safe backup.

    .venv/bin/python bench/backup_restore.py [--gib 1.0] [--rpo-seconds 60]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "backup"))
from e2e import make_env, sibling, start_cloud  # noqa: E402
from pg import PG_BIN, free_port, give_to_postgres, new_root, run_as  # noqa: E402
from serving import Server, enabled, writer_connect  # noqa: E402
from test_pitr import admin_connect, restore_to  # noqa: E402

from eucadb.cloud.local.layout import Layout  # noqa: E402

W = "services.database.worker."
ROW = "INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit) " \
      "SELECT g %% 1000, now() - g * interval '1 ms', 1, g, g, g, 'bench' FROM generate_series(1, %s) g"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fill(env, address: str, gib: float) -> int:
    """Rows until the cluster holds about `gib` GiB; returns its size in bytes."""
    with admin_connect(env, address, "eucalyptus_cloudwatch_backend") as conn, conn.cursor() as cur:
        while True:
            cur.execute("SELECT sum(pg_database_size(oid)) FROM pg_database")
            size = int(cur.fetchone()[0])
            if size >= gib * 2**30:
                cur.execute("CHECKPOINT")
                return size
            cur.execute(ROW, (500_000,))


def pgdata_of(env, instance_id: str) -> Path:
    """The instance's PGDATA as the host sees it: its data volume's directory."""
    ec2 = env.client("ec2")
    volume = next(m["Ebs"]["VolumeId"] for r in ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
                  for i in r["Instances"] for m in i.get("BlockDeviceMappings", []) if m["DeviceName"] == "/dev/sdf")
    return Layout.from_config(env.app().config).volume_dir(volume) / "pgdata"


def raw_restore(tarball: Path) -> float:
    """tar -x into a new directory and start PostgreSQL on it (crash recovery) until it accepts."""
    root = new_root("eucadb-bench-raw-")
    pgdata = root / "pgdata"
    try:
        start = time.perf_counter()
        pgdata.mkdir()
        subprocess.run(["tar", "-xf", tarball, "-C", pgdata], check=True)
        if os.geteuid() == 0:   # PostgreSQL's files must be its own
            subprocess.run(["chown", "-R", "postgres:postgres", pgdata], check=True)
        give_to_postgres(pgdata, 0o700)
        (pgdata / "recovery.signal").unlink(missing_ok=True)
        (root / "hba.conf").write_text("local all all trust\n")
        give_to_postgres(root / "hba.conf", 0o644)
        port = free_port()
        settings = {"listen_addresses": "", "port": str(port), "unix_socket_directories": str(root),
                    "ssl": "off", "archive_mode": "off", "logging_collector": "off",
                    "hba_file": str(root / "hba.conf")}
        subprocess.run([PG_BIN / "pg_ctl", "-D", pgdata, "-l", root / "log", "-w", "-t", "600", "-o",
                        " ".join(f"-c {k}='{v}'" for k, v in settings.items()), "start"],
                       check=True, capture_output=True, **run_as())
        return time.perf_counter() - start
    finally:
        subprocess.run([PG_BIN / "pg_ctl", "-D", pgdata, "-m", "immediate", "stop"], capture_output=True, **run_as())
        shutil.rmtree(root, ignore_errors=True)


def rpo(env, address: str, seconds: float) -> list[float]:
    """Ages of the newest archived segment, once a second, while a writer commits 20 rows/s."""
    stop = threading.Event()

    def write() -> None:
        with writer_connect(env, address) as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, "
                            "unit) VALUES (1, now(), 1, 1, 1, 1, 'rpo')")
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    ages = []
    try:
        with admin_connect(env, address) as conn, conn.cursor() as cur:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                cur.execute("SELECT pg_stat_clear_snapshot()")
                cur.execute("SELECT last_archived_time FROM pg_stat_archiver")
                last = cur.fetchone()[0]
                if last is not None:
                    ages.append((datetime.now(timezone.utc) - last).total_seconds())
                time.sleep(1)
    finally:
        stop.set()
        writer.join(10)
    return ages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rpo-seconds", type=float, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eucadb-bench-"))
    cloud = start_cloud(make_env(tmp / "cloud"))
    env = sibling(cloud, tmp / "dep", **{W + "configured": "true", W + "backup.archive_timeout": "10"})
    server = Server(env, free_port())
    try:
        doc = server.wait(enabled, 300)
        address = doc["database"]["endpoint"].split(":")[0]
        size = fill(env, address, args.gib)
        pgdata = pgdata_of(env, doc["instance"]["instance_id"])
        print(f"database: {size / 2**30:.2f} GiB ({pgdata})")

        made: dict = {}
        backup = timed(lambda: made.update(json.loads(
            env.run("backup", "create", "--name", "bench", "-o", "json", timeout=3600).stdout)))
        tarball = tmp / "pgdata.tar"
        tar = timed(lambda: subprocess.run(["tar", "-cf", tarball, "-C", pgdata, "."], check=True,
                                           stderr=subprocess.DEVNULL))   # a live cluster: "file changed"
        cp = timed(lambda: subprocess.run(["cp", "-a", pgdata, tmp / "pgdata.copy"], check=True))
        shutil.rmtree(tmp / "pgdata.copy", ignore_errors=True)
        print(f"backup   eucadb {backup:7.1f}s   tar -cf {tar:6.1f}s (ratio {backup / tar:.2f})   "
              f"cp -a {cp:6.1f}s (ratio {backup / cp:.2f})")

        with admin_connect(env, address) as conn, conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()::text")
            target = cur.fetchone()[0]
            # recovery stops at the first commit past the target: one must be in the archive
            cur.execute("SELECT txid_current()")
            cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
            segment = cur.fetchone()[0]
            while True:
                cur.execute("SELECT pg_stat_clear_snapshot()")
                cur.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
                if cur.fetchone()[0][:24] >= segment:
                    break
                time.sleep(0.5)
        restored: list = []
        restore = timed(lambda: restored.append(restore_to(env, made["backup_id"], target)))
        root, _port = restored[0]
        subprocess.run([PG_BIN / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"], capture_output=True,
                       **run_as())
        shutil.rmtree(root, ignore_errors=True)
        raw = raw_restore(tarball)
        tarball.unlink()
        print(f"restore  eucadb {restore:7.1f}s   tar -xf + start {raw:6.1f}s (ratio {restore / raw:.2f})")

        for timeout in ("10", "60"):
            if timeout != "10":   # a launch input: the instance rolls (same volume)
                before = doc["instance"]["instance_id"]
                env.run("property", "set", f"{W}backup.archive_timeout={timeout}")
                doc = server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != before
                                  and d["database"]["endpoint"].split(":")[0] == d["instance"]["private_ip"], 600)
                address = doc["database"]["endpoint"].split(":")[0]
            ages = rpo(env, address, args.rpo_seconds)
            print(f"RPO      archive_timeout={timeout:>2}s: newest archived WAL age median "
                  f"{statistics.median(ages):.1f}s, max {max(ages):.1f}s over {len(ages)} samples")
    finally:
        server.stop()
        env.run("workflow", "teardown", "--delete-volume", check=False)
        cloud.run("cloud", "down", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
