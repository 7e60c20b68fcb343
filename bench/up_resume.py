#!/usr/bin/env python3
"""`eucadb up` on a kept deployment (after `eucadb down`) against the first `eucadb up`, each from the
command to services ENABLED, on the embedded cloud of a fresh home. The resumed one reboots the same
instance on the same volume (no initdb, no launch workflow), so it should be faster. Also shows what
the control plane's state file costs: its size, and the state saves the first `up` made (each one
is a pickle of moto's backends plus an fsync, before the change is answered).

    .venv/bin/python bench/up_resume.py [--rounds N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from e2e import make_env  # noqa: E402
from pg import free_port  # noqa: E402


def timed(env, *args: str) -> float:
    started = time.perf_counter()
    env.run(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="down + up rounds on the kept deployment")
    args = parser.parse_args()
    env = make_env(Path("resume"))  # only its name is used: short, PostgreSQL's socket lives below
    env.extra.update({"EUCADB_SERVE_PORT": str(free_port()), "EUCADB_LOG_LEVEL": "DEBUG"})
    try:
        first = timed(env, "up")
        api_log = (env.home / "cloud" / "logs" / "api.log").read_text()
        saves = [float(line.rsplit(" in ", 1)[1].split()[0]) for line in api_log.splitlines()
                 if "state saved in" in line]
        state = env.data_dir / "state" / "control-plane.pickle"
        resumed = []
        for _ in range(args.rounds):
            env.run("down")
            resumed.append(timed(env, "up"))
        median = statistics.median(resumed)
        print(f"first up:   {first:6.1f} s   (launch workflow, initdb)")
        print(f"resumed up: {median:6.1f} s   median of {len(resumed)}: "
              + ", ".join(f"{r:.1f}" for r in resumed))
        print(f"ratio resumed/first: {median / first:.2f}")
        if saves:
            print(f"state saves during the first up: {len(saves)}, median {statistics.median(saves):.1f} ms, "
                  f"total {sum(saves) / 1000:.2f} s; state file {state.stat().st_size} bytes")
    finally:
        env.run("destroy", "--yes", check=False)


if __name__ == "__main__":
    main()
