"""Processes the embedded cloud starts: pid files that prove identity, and stopping/freezing by set.

A pid alone is not proof: it can be reused. A record stores the pid with the kernel's start time of
that process (/proc/<pid>/stat field 22), so `alive()` answers "is *our* process still running".
An instance's processes are its cgroup (cgroups.py) when one could be made. Without cgroups (not
root) they are found as its process group plus every process whose environment holds the instance's
marker (its metadata endpoint) — best effort: PostgreSQL's children leave the group and overwrite
their environment.
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

from eucadb.cloud.local.cgroups import Cgroup, cgroup_of, close_gate, gate_argv

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
    cgroup: str = ""          # the set's cgroup directory, when there is one
    cgroup_version: int = 0

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time

    @property
    def group(self) -> Cgroup | None:
        return cgroup_of(self.cgroup, self.cgroup_version)

    def members(self) -> list[int]:
        """Live (non-zombie) processes of this set: its cgroup, or else its process group plus
        marked processes."""
        group = self.group
        if group is not None and group.exists():
            return [pid for pid in group.pids() if _pgid(pid) is not None]
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
          marker: str = "", info: dict | None = None, cgroup: Cgroup | None = None,
          **popen: object) -> tuple[subprocess.Popen, PidRecord]:
    """Start `argv` detached in its own session (and inside `cgroup`), output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [str(a) for a in argv]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(gate_argv(args) if cgroup else args,
                                stdin=subprocess.PIPE if cgroup else subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True,
                                close_fds=True, **popen)
    if cgroup is not None:
        try:
            cgroup.add(proc.pid)
        except OSError:
            proc.kill()  # still waiting at the gate: nothing of it ran
            proc.wait()
            raise
        close_gate(proc.stdin)
    started = start_time(proc.pid)
    if started is None:  # already exited: report it as a record that is not alive
        started = -1
    return proc, PidRecord(proc.pid, started, marker, info, str(cgroup.path) if cgroup else "",
                           cgroup.version if cgroup else 0)


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def stop(record: PidRecord, timeout: float, reap: subprocess.Popen | None = None) -> bool:
    """SIGTERM the whole set, SIGKILL what is left after `timeout`. True if it stopped in time."""
    if record.group is not None and record.group.exists():
        record.group.thaw()  # a frozen process cannot act on SIGTERM (a snapshot may have crashed)
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
    if record.group is not None:
        record.group.remove()
    return graceful


class Frozen:
    """Context manager: freeze every process of the set (crash-consistent snapshot), thaw after.

    With a cgroup the kernel freezes the whole group atomically. Without, each member gets SIGSTOP,
    repeated until no new member appears (a process forked meanwhile is stopped too). Thawing always
    happens, even if the copy inside fails.
    """

    def __init__(self, record: PidRecord | None):
        self.record = record
        self.stopped: set[int] = set()
        self.group = record.group if record is not None else None

    def __enter__(self) -> "Frozen":
        if self.record is None:
            return self
        if self.group is not None and self.group.exists():
            self.group.freeze()
            return self
        self.group = None
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
        if self.group is not None:
            self.group.thaw()
        _signal_all(self.stopped, signal.SIGCONT)
