"""Disks of the embedded cloud: instance root directories, EBS volumes and snapshots as directories.

Contract with the instance: an attached volume appears as `<instance root>/dev/<device>` (device name
without `/dev/`, e.g. `sdf`), a symlink to the volume's directory. A boot program treats a directory
there as an already-mounted filesystem, and mounts it when it is a real block device.
Copies use `cp -a` so ownership and modes survive (PostgreSQL insists on a 0700 data directory it owns).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.procs import Frozen, PidRecord
from eucadb.errors import CloudError

log = logging.getLogger(__name__)


def device_name(device: str) -> str:
    """'/dev/sdf' -> 'sdf' (the file name under the instance's dev/)."""
    name = device.removeprefix("/dev/")
    if not name or "/" in name or name.startswith("."):
        raise CloudError(f"unsupported device name {device!r}")
    return name


def prepare_root(layout: Layout, instance_id: str) -> Path:
    """The instance's root filesystem: owned by the instance user, except dev/ (only the cloud
    plugs devices in, so the instance cannot point its data disk somewhere else)."""
    root = layout.make_owned_dir(layout.instance_root(instance_id))
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    os.chmod(dev, 0o755)
    layout.make_owned_dir(root / "var")
    layout.make_owned_dir(root / "var" / "log")
    return root


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy `src` to a new `dst` atomically (temp name, then rename), keeping owners and modes."""
    tmp = dst.with_name(dst.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    done = subprocess.run(["cp", "-a", "--reflink=auto", f"{src}/.", str(tmp)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CloudError(f"copying {src} failed: {done.stderr.strip()}")
    shutil.copystat(src, tmp)
    st = src.stat()
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, dst)


def create_volume(layout: Layout, volume_id: str, snapshot_id: str | None = None) -> Path:
    """A new volume: empty, or a full copy of a snapshot's data (EBS lazy-loads; we copy eagerly)."""
    path = layout.volume_dir(volume_id)
    if snapshot_id:
        source = layout.snapshot_dir(snapshot_id)
        if source.is_dir():
            _copy_tree(source, path)
            return path
        log.warning("snapshot %s has no data here; volume %s starts empty", snapshot_id, volume_id)
    return layout.make_owned_dir(path, 0o700)


def ensure_volume(layout: Layout, volume_id: str) -> Path:
    """A volume created outside the API path (e.g. a launch template's block device) gets a directory."""
    path = layout.volume_dir(volume_id)
    return path if path.is_dir() else layout.make_owned_dir(path, 0o700)


def delete_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def attached_instance(layout: Layout, volume_id: str) -> str | None:
    """Which instance has this volume plugged in (read from the device links, the data plane's truth)."""
    target = layout.volume_dir(volume_id)
    for root in (layout.data_dir / "instances").glob("*/dev"):
        for link in root.iterdir():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                return root.parent.name
    return None


def create_snapshot(layout: Layout, volume_id: str, snapshot_id: str) -> None:
    """Crash-consistent copy: the attached instance's processes are frozen while the data is copied,
    like a block-level snapshot taken at one instant."""
    source = layout.volume_dir(volume_id)
    if not source.is_dir():
        log.warning("volume %s has no data here; snapshot %s is empty", volume_id, snapshot_id)
        source.mkdir(parents=True, exist_ok=True)
    instance_id = attached_instance(layout, volume_id)
    record = PidRecord.load(layout.instance_pidfile(instance_id)) if instance_id else None
    with Frozen(record):
        _copy_tree(source, layout.snapshot_dir(snapshot_id))


def sync_devices(layout: Layout, instance_id: str, wanted: Mapping[str, str], remove: bool = True) -> None:
    """Make `<root>/dev` hold the links in `wanted` (device -> volume id); with `remove`, only those."""
    dev = layout.instance_root(instance_id) / "dev"
    if not dev.is_dir():
        return
    want = {device_name(d): layout.volume_dir(v) for d, v in wanted.items()}
    for link in dev.iterdir():
        if remove and link.is_symlink() and Path(os.readlink(link)) != want.get(link.name):
            link.unlink()
    for name, target in want.items():
        link = dev / name
        if not link.is_symlink():
            ensure_volume(layout, target.name)
            os.symlink(target, link)


def link_device(layout: Layout, instance_id: str, device: str, volume_id: str) -> None:
    """Plug one volume in at attach time (the realizer's periodic sync keeps it so)."""
    prepare_root(layout, instance_id)
    link = layout.instance_root(instance_id) / "dev" / device_name(device)
    if link.is_symlink():
        link.unlink()
    ensure_volume(layout, volume_id)
    os.symlink(layout.volume_dir(volume_id), link)


def unlink_volume(layout: Layout, volume_id: str) -> None:
    """Unplug a volume from whichever instance has it (detach, or its instance terminated)."""
    target = layout.volume_dir(volume_id)
    for dev in (layout.data_dir / "instances").glob("*/dev"):
        for link in dev.iterdir():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                link.unlink()
