"""Realized instances as the data plane sees them: pid records, start and stop of a boot program.

Shared by the realizer (which boots instances) and the API gateway (which stops them synchronously on
TerminateInstances/StopInstances, so a volume is never "available" while its old instance still runs).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from eucadb.cloud.local import disks
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.procs import PidRecord, spawn, stop

log = logging.getLogger(__name__)

METADATA_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
INSTANCE_PATH = "/usr/local/bin:/usr/bin:/bin"


def metadata_endpoint(ip: str, port: int) -> str:
    return f"http://{ip}:{port}/"


def boot_env(ip: str, port: int) -> dict[str, str]:
    """Only what a VM would know: where its metadata service is. No endpoint, region or credentials."""
    return {METADATA_ENV: metadata_endpoint(ip, port), "PATH": INSTANCE_PATH, "LANG": "C.UTF-8"}


def boot_command(image_dir: Path, root: Path) -> list[str]:
    """The image's boot program contract: `<runtime python> <image>/setup_db.py --root <instance root>`."""
    return [str(image_dir / "runtime" / "bin" / "python"), str(image_dir / "setup_db.py"),
            "--root", str(root)]


def boot(layout: Layout, instance_id: str, image_dir: Path, ip: str, port: int,
         launch: str) -> tuple[subprocess.Popen, PidRecord]:
    """Run the image's boot program as the instance: own root, own session, unprivileged user."""
    root = disks.prepare_root(layout, instance_id)
    env = boot_env(ip, port)
    marker = f"{METADATA_ENV}={env[METADATA_ENV]}"
    proc, record = spawn(boot_command(image_dir, root), log_path=root / "var" / "log" / "boot.log",
                         env=env, cwd=root, marker=marker,
                         info={"instance_id": instance_id, "ip": ip, "image_dir": str(image_dir),
                               "launch": launch}, **layout.user.popen_kwargs())
    layout.user.chown(root / "var" / "log" / "boot.log")
    record.save(layout.instance_pidfile(instance_id))
    log.info("realized %s at %s (pid %d)", instance_id, ip, record.pid)
    return proc, record


def halt(layout: Layout, instance_id: str, timeout: float, reap: subprocess.Popen | None = None) -> None:
    """Stop every process of the instance (SIGTERM, then SIGKILL after `timeout`); keep its disk."""
    record = PidRecord.load(layout.instance_pidfile(instance_id))
    if record is None:
        return
    if record.members():
        graceful = stop(record, timeout, reap)
        log.info("stopped %s%s", instance_id, "" if graceful else " (killed after timeout)")
    elif reap is not None:
        reap.poll()
    layout.instance_pidfile(instance_id).unlink(missing_ok=True)


def destroy(layout: Layout, instance_id: str, timeout: float, reap: subprocess.Popen | None = None) -> None:
    """Terminated: stop it, unplug its volumes, delete its root filesystem."""
    halt(layout, instance_id, timeout, reap)
    disks.sync_devices(layout, instance_id, {})
    root = layout.instance_root(instance_id)
    if root.exists():
        shutil.rmtree(root)
