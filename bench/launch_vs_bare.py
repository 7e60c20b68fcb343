#!/usr/bin/env python3
"""Time from `eucadb workflow launch` to a TLS-verified database, against the bare baseline run side
by side on the same machine: initdb + pg_ctl start + createdb ×2. Prints both and the ratio.

    .venv/bin/python bench/launch_vs_bare.py [--rounds N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from e2e import make_env, sibling, start_cloud  # noqa: E402
from pg import PG_BIN, free_port, run_as  # noqa: E402


def bare(tmp: Path) -> float:
    """initdb + start + two databases: what any PostgreSQL needs before it is usable.

    Its directory is made beside `tmp`, not in it: `tmp` is mode 0700 (mkdtemp), which the
    `postgres` user that initdb runs as when we are root could not traverse."""
    import os
    import pwd
    root = Path(tempfile.mkdtemp(prefix="bare-", dir=tmp.parent))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = free_port()
    started = time.perf_counter()
    subprocess.run([PG_BIN / "initdb", "-D", root / "data", "-U", "postgres", "-A", "trust", "--data-checksums"],
                   check=True, capture_output=True, **run_as())
    subprocess.run([PG_BIN / "pg_ctl", "-D", root / "data", "-w", "-l", root / "log", "-o",
                    f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}",
                    "start"], check=True, capture_output=True, **run_as())
    for db in ("eucalyptus_cloudwatch_backend", "eucalyptus_reporting_backend"):
        subprocess.run([PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", db],
                       check=True, capture_output=True, **run_as())
    elapsed = time.perf_counter() - started
    subprocess.run([PG_BIN / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"],
                   capture_output=True, **run_as())
    shutil.rmtree(root, ignore_errors=True)
    return elapsed


def launch(cloud, tmp: Path) -> float:
    env = sibling(cloud, tmp)
    started = time.perf_counter()
    env.run("workflow", "launch")
    elapsed = time.perf_counter() - started
    env.run("workflow", "teardown", "--delete-volume")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eucadb-bench-"))
    cloud = start_cloud(make_env(tmp / "cloud"))
    try:
        bare_t, launch_t = [], []
        for i in range(args.rounds):           # interleaved, so both see the same machine load
            bare_t.append(bare(tmp))
            launch_t.append(launch(cloud, tmp / f"launch{i}"))
        b, l_ = statistics.median(bare_t), statistics.median(launch_t)
        print(f"bare initdb+start+createdb×2: median {b:.2f}s  {['%.2f' % x for x in bare_t]}")
        print(f"eucadb launch to TLS-ready:   median {l_:.2f}s  {['%.2f' % x for x in launch_t]}")
        print(f"ratio launch/bare: {l_ / b:.2f}")
    finally:
        cloud.run("cloud", "down", check=False)


if __name__ == "__main__":
    main()
