"""Realized instances as the data plane sees them: pid records, start and stop of a boot program.

Shared by the realizer (which boots instances) and the API gateway (which stops them synchronously on
TerminateInstances/StopInstances, before answering, so a freed volume is never in use twice).
"""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from eucadb.cloud.local import disks
from eucadb.cloud.local.cgroups import Cgroup
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.procs import PidRecord, spawn, stop

log = logging.getLogger(__name__)

METADATA_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
INSTANCE_PATH = "/usr/local/bin:/usr/bin:/bin"


@contextmanager
def locked(layout: Layout, instance_id: str) -> Iterator[None]:
    """Serialise boot/halt/destroy of one instance between the realizer and the API gateway (two
    processes): whoever comes second sees the other's result, so a terminated instance is never
    booted from a poll that was already stale."""
    path = layout.cloud_dir / "instances" / f"{instance_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def metadata_endpoint(ip: str, port: int) -> str:
    return f"http://{ip}:{port}/"


def boot_env(ip: str, port: int) -> dict[str, str]:
    """Only what a VM would know: where its metadata service is. No endpoint, region or credentials."""
    return {METADATA_ENV: metadata_endpoint(ip, port), "PATH": INSTANCE_PATH, "LANG": "C.UTF-8"}


def boot_command(image_dir: Path, root: Path) -> list[str]:
    """The image's boot program contract: `<runtime python> <image>/setup_db.py --root <instance root>`."""
    return [str(image_dir / "runtime" / "bin" / "python"), str(image_dir / "setup_db.py"),
            "--root", str(root)]


@functools.lru_cache(maxsize=1)
def _namespaces_work() -> bool:
    """Can we give instances their own PID namespace here (root, util-linux, no seccomp veto)?"""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.geteuid() != 0 or not unshare or not setpriv:
        return False
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10)
    return done.returncode == 0


def as_instance(layout: Layout, argv: list[str]) -> tuple[list[str], dict]:
    """`argv` and Popen arguments that run it as an instance would run.

    As root: in its own PID (and /proc mount) namespace, dropped to the instance user. Like a VM it
    then sees only its own processes, so PostgreSQL started from a snapshot taken on this host does
    not mistake the source server's pid (still alive on the host) for a running postmaster; and when
    its first process exits, the kernel ends all of the instance's processes. Without namespaces,
    only the user is dropped."""
    user = layout.user
    if user.uid is None:
        return argv, {}
    if not _namespaces_work():
        return argv, user.popen_kwargs()
    return [shutil.which("unshare") or "unshare", "--pid", "--fork", "--mount-proc",
            shutil.which("setpriv") or "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
            "--clear-groups", "--", *argv], {}


def boot(layout: Layout, instance_id: str, image_dir: Path, ip: str, port: int,
         launch: str) -> tuple[subprocess.Popen, PidRecord]:
    """Run the image's boot program as the instance: own root, own session, unprivileged user."""
    root = disks.prepare_root(layout, instance_id)
    env = boot_env(ip, port)
    marker = f"{METADATA_ENV}={env[METADATA_ENV]}"
    argv, popen = as_instance(layout, boot_command(image_dir, root))
    proc, record = spawn(argv, log_path=root / "var" / "log" / "boot.log",
                         env=env, cwd=root, marker=marker, cgroup=Cgroup.create(layout.cgroup_name(instance_id)),
                         info={"instance_id": instance_id, "ip": ip, "image_dir": str(image_dir),
                               "launch": launch}, **popen)
    layout.user.chown(root / "var" / "log" / "boot.log")
    record.save(layout.instance_pidfile(instance_id))
    log.info("realized %s at %s (pid %d)", instance_id, ip, record.pid)
    return proc, record


def halt(layout: Layout, instance_id: str, timeout: float, reap: subprocess.Popen | None = None) -> None:
    """Stop every process of the instance (SIGTERM, then SIGKILL after `timeout`); keep its disk."""
    record = PidRecord.load(layout.instance_pidfile(instance_id))
    if record is None:
        return
    running = bool(record.members())
    graceful = stop(record, timeout, reap)  # also removes its cgroup
    if running:
        log.info("stopped %s%s", instance_id, "" if graceful else " (killed after timeout)")
    layout.instance_pidfile(instance_id).unlink(missing_ok=True)


def destroy(layout: Layout, instance_id: str, timeout: float, reap: subprocess.Popen | None = None) -> None:
    """Terminated: stop it, unplug its volumes, delete its root filesystem."""
    halt(layout, instance_id, timeout, reap)
    disks.sync_devices(layout, instance_id, {})
    root = layout.instance_root(instance_id)
    if root.exists():
        shutil.rmtree(root)
