"""Per-instance control groups: the kernel's own answer to "which processes are this instance".

Process groups and environment markers are not enough: PostgreSQL's children call setsid() and its
ps-display code overwrites the environment. A cgroup is inherited by every fork whatever the child
does, and it can be frozen atomically (a crash-consistent snapshot of all of the instance's
processes at one instant, like a hypervisor pausing a VM). cgroup v2 (`cgroup.freeze`) is used when
a writable cgroup2 hierarchy exists, else the v1 freezer; without either (not root) callers fall back
to process groups + markers (procs.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, options) of every mount."""
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            found.append((parts[1], parts[2], parts[3]))
    return found


def _roots() -> list[tuple[Path, int]]:
    """Candidate hierarchies, preferred first: cgroup2, then the v1 freezer."""
    mounts = _mounts()
    roots = [(Path(point), 2) for point, fstype, _ in mounts if fstype == "cgroup2"]
    roots += [(Path(point), 1) for point, fstype, opts in mounts
              if fstype == "cgroup" and "freezer" in opts.split(",")]
    return roots


@dataclass(frozen=True)
class Cgroup:
    path: Path
    version: int

    @classmethod
    def create(cls, name: str) -> "Cgroup | None":
        """Make (or reuse) the cgroup `name` in the first writable hierarchy; None if there is none."""
        for root, version in _roots():
            path = root / name
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.debug("cannot use %s: %s", root, exc)
                continue
            return cls(path, version)
        return None

    def exists(self) -> bool:
        return (self.path / "cgroup.procs").exists()

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(f"{pid}\n")

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def _set_frozen(self, frozen: bool) -> None:
        if self.version == 2:
            (self.path / "cgroup.freeze").write_text("1" if frozen else "0")
        else:
            (self.path / "freezer.state").write_text("FROZEN" if frozen else "THAWED")

    def _is_frozen(self) -> bool:
        if self.version == 2:
            return "frozen 1" in (self.path / "cgroup.events").read_text().splitlines()
        return (self.path / "freezer.state").read_text().strip() == "FROZEN"

    def freeze(self, timeout: float = 10.0) -> None:
        """Freeze every process of the group; returns once the kernel reports them all frozen."""
        self._set_frozen(True)
        deadline = time.monotonic() + timeout
        while not self._is_frozen():
            if time.monotonic() > deadline:
                self.thaw()
                raise TimeoutError(f"{self.path} did not freeze within {timeout}s")
            time.sleep(0.002)

    def thaw(self) -> None:
        self._set_frozen(False)

    def remove(self) -> None:
        """Delete the (empty) cgroup, and its parent scope if that became empty too."""
        for path in (self.path, self.path.parent):
            try:
                path.rmdir()
            except FileNotFoundError:
                continue
            except OSError as exc:  # still has processes or children: leave it for a later call
                log.debug("keeping %s: %s", path, exc)
                return


def cgroup_of(path: str, version: int) -> Cgroup | None:
    return Cgroup(Path(path), version) if path else None


def gate_argv(argv: list[str]) -> list[str]:
    """Wrap `argv` so it waits for one line on stdin before exec'ing: the parent puts the child into
    its cgroup first, so not even the first fork of the boot program escapes it."""
    return ["/bin/sh", "-c", 'read _gate; unset PWD; exec "$@"', "instance-boot", *argv]


def close_gate(stdin: IO[bytes] | None) -> None:
    """Release a gated child (see gate_argv)."""
    if stdin is None:
        return
    try:
        stdin.write(b"go\n")
        stdin.close()
    except BrokenPipeError:
        log.warning("boot program exited before it was released")
