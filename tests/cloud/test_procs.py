"""Process sets: identity by start time, freezing (cgroup or SIGSTOP), stopping escapees of the
process group (setsid, as PostgreSQL's children do), and small pure helpers."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from localcloud import wait_for

from eucadb.cloud.local.cgroups import Cgroup
from eucadb.cloud.local.network import subnet_cidr
from eucadb.cloud.local.procs import Frozen, PidRecord, spawn, stop
from eucadb.config import load
from eucadb.errors import ConfigError

# a parent that forks a child which leaves the process group (setsid); both bump counters
COUNTER = """
import os, sys, time
path = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    path += ".child"
n = 0
while True:
    n += 1
    open(path, "w").write(str(n))
    time.sleep(0.005)
"""


def _counter(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


@pytest.fixture(params=["cgroup", "signals"])
def counting(request, tmp_path):
    cgroup = Cgroup.create(f"eucadb-test-{os.getpid()}/{tmp_path.name}") if request.param == "cgroup" else None
    if request.param == "cgroup" and cgroup is None:
        pytest.skip("no writable cgroup hierarchy")
    marker = f"EUCADB_TEST_MARKER={tmp_path}"
    proc, record = spawn([sys.executable, "-c", COUNTER, str(tmp_path / "n")], log_path=tmp_path / "log",
                         env={"EUCADB_TEST_MARKER": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                         marker=marker, cgroup=cgroup)
    wait_for(lambda: _counter(tmp_path / "n") and _counter(tmp_path / "n.child"), 5, "counting")
    yield proc, record, tmp_path
    stop(record, 2, proc)


def test_record_identity(counting):
    proc, record, tmp = counting
    assert record.alive()
    assert len(record.members()) == 2, "the setsid child is still a member"
    impostor = PidRecord(record.pid, record.start_time + 1)
    assert not impostor.alive()
    record.save(tmp / "rec.json")
    assert PidRecord.load(tmp / "rec.json") == record
    assert PidRecord.load(tmp / "missing.json") is None


def test_frozen_stops_every_member_and_always_thaws(counting):
    _, record, tmp = counting
    files = [tmp / "n", tmp / "n.child"]
    with pytest.raises(RuntimeError):
        with Frozen(record):
            seen = [_counter(f) for f in files]
            time.sleep(0.2)
            assert [_counter(f) for f in files] == seen, "nothing moves while frozen"
            raise RuntimeError("the copy failed")
    wait_for(lambda: all(_counter(f) > s for f, s in zip(files, seen)), 5, "thawed after a failure")


def test_stop_reaches_processes_that_left_the_group(counting):
    proc, record, _ = counting
    assert stop(record, 5, proc)
    assert record.members() == []
    assert proc.returncode is not None


def test_stop_kills_what_ignores_sigterm(tmp_path):
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"
    proc, record = spawn([sys.executable, "-c", script], log_path=tmp_path / "log", env={}, cwd=tmp_path)
    wait_for(lambda: "ready" in (tmp_path / "log").read_text(), 5, "started")
    started = time.monotonic()
    assert stop(record, 0.3, proc) is False
    assert time.monotonic() - started < 3 and not record.alive()


def test_subnet_cidrs():
    assert subnet_cidr("127.80.0.0/16", 0) == "127.80.1.0/24"
    assert subnet_cidr("127.201.0.0/16", 5) == "127.201.6.0/24"


@pytest.mark.parametrize("bad", ["10.0.0.0/16", "127.80.0.0/24", "nonsense"])
def test_vpc_cidr_must_be_a_loopback_16(bad):
    with pytest.raises(ConfigError, match="cloud.vpc_cidr"):
        load(env={"EUCADB_HOME": "/nonexistent", "EUCADB_CLOUD_VPC_CIDR": bad})


def test_gate_keeps_the_boot_environment_exact(tmp_path):
    cgroup = Cgroup.create(f"eucadb-test-{os.getpid()}/env")
    if cgroup is None:
        pytest.skip("no writable cgroup hierarchy")
    proc, record = spawn(["/usr/bin/env"], log_path=tmp_path / "log", env={"ONLY": "1"}, cwd=tmp_path,
                         cgroup=cgroup)
    proc.wait(5)
    stop(record, 1, proc)
    assert (tmp_path / "log").read_text().split() == ["ONLY=1"]
    assert not cgroup.path.exists()
