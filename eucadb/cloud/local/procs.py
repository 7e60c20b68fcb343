"""Processes the embedded cloud starts: pid files that prove identity, and stopping/freezing by set.

A pid alone is not proof: it can be reused. A record stores the pid with the kernel's start time of
that process (/proc/<pid>/stat field 22), so `alive()` answers "is *our* process still running".
An instance's processes are found as its process group plus every process whose environment holds
the instance's marker (its metadata endpoint): daemons such as `pg_ctl start` call setsid() and leave
the group, but they keep the environment.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)


def start_time(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of `pid`, None if it does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _pgid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else int(fields[2])


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


@dataclass(frozen=True)
class PidRecord:
    """A process we started: its pid (= process group id, it is a session leader) and start time."""
    pid: int
    start_time: int
    marker: str = ""          # "NAME=value" in the environment of every process of this set
    info: dict | None = None  # anything the owner wants to remember (ip, image…)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time

    def members(self) -> list[int]:
        """Live (non-zombie) processes of this set: the group, plus marked processes."""
        marker = self.marker.encode()
        leader_alive = self.alive()
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            pgid = _pgid(pid)
            if pgid is None:
                continue
            if (pgid == self.pid and leader_alive) or (marker and _has_marker(pid, marker)):
                found.append(pid)
        return found

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "PidRecord | None":
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            log.warning("ignoring unreadable pid file %s: %s", path, exc)
            return None


def spawn(argv: Sequence[str | os.PathLike], *, log_path: Path, env: dict[str, str], cwd: Path,
          marker: str = "", info: dict | None = None, **popen: object) -> tuple[subprocess.Popen, PidRecord]:
    """Start `argv` detached in its own session, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True,
                                close_fds=True, **popen)
    started = start_time(proc.pid)
    if started is None:  # already exited: report it as a record that is not alive
        started = -1
    return proc, PidRecord(proc.pid, started, marker, info)


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def stop(record: PidRecord, timeout: float, reap: subprocess.Popen | None = None) -> bool:
    """SIGTERM the whole set, SIGKILL what is left after `timeout`. True if it stopped in time."""
    members = record.members()
    _signal_all(members, signal.SIGTERM)
    _signal_all(members, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
    deadline = time.monotonic() + timeout
    graceful = True
    while members:
        if reap is not None:
            reap.poll()
        if time.monotonic() > deadline:
            graceful = False
            _signal_all(members, signal.SIGKILL)
        time.sleep(0.05)
        members = record.members()
    if reap is not None:
        reap.wait(timeout=5)
    return graceful


class Frozen:
    """Context manager: SIGSTOP every process of the set (crash-consistent snapshot), SIGCONT after.

    Stopping is repeated until no new member appears, so a process forked during the freeze is
    frozen too. Thawing always happens, even if the copy inside fails.
    """

    def __init__(self, record: PidRecord | None):
        self.record = record
        self.stopped: set[int] = set()

    def __enter__(self) -> "Frozen":
        if self.record is None:
            return self
        for _ in range(20):
            new = set(self.record.members()) - self.stopped
            if not new:
                break
            _signal_all(new, signal.SIGSTOP)
            self.stopped |= new
        self._wait_stopped()
        return self

    def _wait_stopped(self, timeout: float = 2.0) -> None:
        """SIGSTOP is asynchronous; wait until the kernel reports every process as stopped (T)."""
        deadline = time.monotonic() + timeout
        pending = set(self.stopped)
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except (FileNotFoundError, ProcessLookupError):
                    pending.discard(pid)
                    continue
                if stat[stat.rindex(")") + 2] in "TtZX":
                    pending.discard(pid)
            if pending:
                time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        _signal_all(self.stopped, signal.SIGCONT)
