"""The instance realizer: makes the cloud's running DB-image instances real processes on this machine.

It polls the cloud like an operator's tooling would (moto applies ASG replacements lazily, when the
groups are described), then for each instance decides one of: boot, adopt (after our own restart, by
pid file), keep, halt (stopped), destroy (terminated). Each realized instance gets its metadata
service on <private ip>:<metadata port> before its boot program starts. A boot program that exits by
itself is not restarted while this realizer runs: a VM whose process died is still a running VM. A
`running` instance with no live process when the realizer starts (after `eucadb down` or a host
reboot: the control plane survives both) is booted again, like a VM when its host comes back.

Each poll ends with the groups' EC2 health check, which moto does not run: a group member that is not
running past its grace period is marked Unhealthy through the API, and the group replaces it.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from eucadb.cloud.client import CloudClients, error_code
from eucadb.cloud.images import DB_IMAGE_TAG
from eucadb.cloud.local import asg_health, disks, instances
from eucadb.cloud.local.identity import Identities, InstanceView, service_clients
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.metadata import MetadataServer
from eucadb.cloud.local.peers import Owner
from eucadb.cloud.local.procs import PidRecord
from eucadb.config import Config
from eucadb.errors import CloudError

log = logging.getLogger(__name__)


@dataclass
class Realized:
    """An instance we run: its process record (and Popen when we are its parent) and its IMDS."""
    instance_id: str
    record: PidRecord
    imds: MetadataServer
    proc: subprocess.Popen | None = None


@dataclass(frozen=True)
class CloudView:
    """One poll's facts: instances (with their reservation owner), which images are DB images, and
    the Auto Scaling groups."""
    instances: dict[str, tuple[dict, str]]
    db_images: frozenset[str]
    groups: tuple[dict, ...] = ()


def attached_devices(instance: dict) -> dict[str, str]:
    """Non-root EBS devices of an instance: device name -> volume id."""
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("Status") in ("attaching", "attached")
            and m["DeviceName"] != instance.get("RootDeviceName")}


class Realizer:
    NOT_DB_IMAGE_RECHECK = 5.0  # seconds: an image may be tagged just after it was registered

    def __init__(self, config: Config, clients: CloudClients):
        self.layout = Layout.from_config(config)
        self.clients = clients
        self.port = config["cloud.metadata_port"]
        self.stop_timeout = config["cloud.stop_timeout"]
        self.interval = config["cloud.poll_interval"]
        self.identities = Identities(clients, config["cloud.region"], lambda: service_clients(config))
        self.realized: dict[str, Realized] = {}
        self._image_kind: dict[str, tuple[bool, float]] = {}  # image id -> (is DB image, checked at)

    # facts -----------------------------------------------------------------------------------
    def _pages(self, service: str, operation: str, key: str, **params: Any) -> list[dict]:
        pages = self.clients.guard(
            lambda: list(self.clients.client(service).get_paginator(operation).paginate(**params)),
            f"{service}.{operation}")
        return [item for page in pages for item in page[key]]

    def _db_images(self, image_ids: set[str]) -> frozenset[str]:
        """Which of these images are eucadb DB images (tag lookups cached: images rarely change)."""
        now = time.monotonic()
        stale = {i for i in image_ids if i not in self._image_kind or
                 (not self._image_kind[i][0] and now - self._image_kind[i][1] > self.NOT_DB_IMAGE_RECHECK)}
        if stale:
            found = self._describe_images(sorted(stale))
            db = {i["ImageId"] for i in found
                  if {"Key": DB_IMAGE_TAG[0], "Value": DB_IMAGE_TAG[1]} in i.get("Tags", [])}
            self._image_kind.update({i: (i in db, now) for i in stale})
        return frozenset(i for i in image_ids if self._image_kind[i][0])

    def _describe_images(self, image_ids: list[str]) -> list[dict]:
        """Images that still exist (one deregistered image must not hide the others)."""
        try:
            return self.clients.call("ec2", "describe_images", ImageIds=image_ids)["Images"]
        except ClientError as exc:
            if not error_code(exc).startswith("InvalidAMIID"):
                raise
            if len(image_ids) == 1:
                return []
        return [image for i in image_ids for image in self._describe_images([i])]

    def observe(self) -> CloudView:
        # describing the groups is what makes moto launch ASG replacements; the health check reads them
        groups = self._pages("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
        found: dict[str, tuple[dict, str]] = {}
        for reservation in self._pages("ec2", "describe_instances", "Reservations"):
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = (instance, reservation.get("OwnerId", ""))
        running = {i["ImageId"] for i, _ in found.values() if i["State"]["Name"] == "running"}
        return CloudView(found, self._db_images(running), tuple(groups))

    # one poll --------------------------------------------------------------------------------
    def poll(self) -> None:
        view = self.observe()
        for instance_id, (instance, owner) in view.instances.items():
            state = instance["State"]["Name"]
            devices = attached_devices(instance)
            try:
                if state in ("shutting-down", "terminated"):
                    self._destroy(instance_id)
                elif state in ("stopping", "stopped"):
                    self._halt(instance_id)
                elif state == "running" and instance["ImageId"] in view.db_images:
                    self._realize(instance, owner, devices)
            except (CloudError, ClientError, BotoCoreError, OSError) as exc:
                # one instance's trouble (an address in use, a vanished profile) must not stall the rest
                log.warning("%s: %s (retrying next poll)", instance_id, exc)
        known = {p.name for p in (self.layout.data_dir / "instances").glob("*")}
        known |= {p.stem for p in (self.layout.cloud_dir / "instances").glob("*.json")}
        for instance_id in known - set(view.instances):  # the cloud forgot it: nothing may keep running
            self._destroy(instance_id)
        self._check_health(view)

    def _check_health(self, view: CloudView) -> None:
        """The groups' EC2 health check: what fails it is marked Unhealthy, as AWS does, and the
        group (the gateway's SetInstanceHealth) replaces it; the next poll realizes the replacement."""
        described = {instance_id: instance for instance_id, (instance, _) in view.instances.items()}
        for instance_id in asg_health.to_mark_unhealthy(view.groups, described, datetime.now(timezone.utc)):
            try:
                # the grace period is already honoured by the rule, from the instance's launch time
                self.clients.call("autoscaling", "set_instance_health", InstanceId=instance_id,
                                  HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
                log.info("%s: not running past its grace period; marked unhealthy", instance_id)
            except (CloudError, ClientError, BotoCoreError) as exc:
                log.warning("%s: could not mark unhealthy: %s (retrying next poll)", instance_id, exc)

    def _realize(self, instance: dict, owner: str, devices: dict[str, str]) -> None:
        instance_id = instance["InstanceId"]
        current = self.realized.get(instance_id)
        if current is not None and not self.layout.instance_pidfile(instance_id).exists():
            self._forget(instance_id)  # halted behind our back (StopInstances): boot it again
            current = None
        view = self.identities.view(instance, owner, tuple(sorted(devices)),
                                    current.imds.view if current else None)
        if current is not None:
            current.imds.view = view
            if current.proc is not None:
                current.proc.poll()  # reap an exited boot program
            return
        image_dir = self.layout.image_dir(instance["ImageId"])
        if not view.private_ip.startswith("127."):
            log.warning("%s: %s is not a loopback address; not realized", instance_id, view.private_ip)
            return
        if not (image_dir / "setup_db.py").is_file():
            log.warning("%s: image %s has no boot program at %s", instance_id, instance["ImageId"], image_dir)
            return
        with instances.locked(self.layout, instance_id):
            # this poll's view may be stale: only a fresh answer decides whether to boot
            if not self._still_running(instance_id):
                return
            self._start(instance_id, view, image_dir, devices)

    def _owner(self, instance_id: str) -> Owner:
        """The instance's processes, as its pid record (written at boot) says at each request."""
        pidfile = self.layout.instance_pidfile(instance_id)

        def members() -> list[int]:
            record = PidRecord.load(pidfile)
            return record.members() if record is not None else []
        uid = self.layout.user.uid
        return Owner(os.geteuid() if uid is None else uid, members)

    def _still_running(self, instance_id: str) -> bool:
        found = self.clients.call("ec2", "describe_instances", InstanceIds=[instance_id])["Reservations"]
        return bool(found) and found[0]["Instances"][0]["State"]["Name"] == "running"

    def _start(self, instance_id: str, view: InstanceView, image_dir: Path, devices: dict[str, str]) -> None:
        """Adopt the instance's processes if our record of this launch exists, else boot it."""
        imds = MetadataServer(view, self.identities, self.port, self._owner(instance_id))
        try:
            record = PidRecord.load(self.layout.instance_pidfile(instance_id))
            proc = None
            if record is not None and (record.info or {}).get("launch") == view.launched and record.members():
                log.info("adopted %s (pid %d)", instance_id, record.pid)
            else:
                if record is not None:  # the host stopped (`eucadb down`, a reboot): boot it again
                    log.info("%s is running with no live process: booting it again", instance_id)
                disks.prepare_root(self.layout, instance_id)
                # add-only: volumes attached at launch (template block devices). Attach/detach
                # through the API are plugged synchronously by the gateway
                disks.sync_devices(self.layout, instance_id, devices, remove=False)
                proc, record = instances.boot(self.layout, instance_id, image_dir, view.private_ip,
                                              self.port, view.launched)
        except BaseException:
            imds.close()
            raise
        self.realized[instance_id] = Realized(instance_id, record, imds, proc)

    def _forget(self, instance_id: str) -> subprocess.Popen | None:
        gone = self.realized.pop(instance_id, None)
        self.identities.forget(instance_id)
        if gone is None:
            return None
        gone.imds.close()
        return gone.proc

    def _halt(self, instance_id: str) -> None:
        proc = self._forget(instance_id)
        if self.layout.instance_pidfile(instance_id).exists():
            with instances.locked(self.layout, instance_id):
                instances.halt(self.layout, instance_id, self.stop_timeout, proc)
        elif proc is not None:
            proc.poll()

    def _destroy(self, instance_id: str) -> None:
        proc = self._forget(instance_id)
        if self.layout.instance_root(instance_id).exists() or \
                self.layout.instance_pidfile(instance_id).exists():
            with instances.locked(self.layout, instance_id):
                instances.destroy(self.layout, instance_id, self.stop_timeout, proc)
            log.info("destroyed %s", instance_id)

    # the loop --------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; transient cloud failures are logged and retried next poll.
        On exit the instances keep running (a restarted realizer adopts them)."""
        self.layout.ensure()
        failing = False
        while not stop.is_set():
            try:
                self.poll()
                if failing:
                    log.info("cloud reachable again")
                failing = False
            except (CloudError, ClientError, BotoCoreError, OSError) as exc:
                if not failing:
                    log.warning("poll failed (will retry every %.1fs): %s", self.interval, exc)
                failing = True
            stop.wait(self.interval)
        self.close()

    def close(self) -> None:
        for realized in list(self.realized.values()):
            realized.imds.close()
        self.realized.clear()


def realized_pids(layout: Layout) -> Iterable[tuple[str, PidRecord]]:
    """Pid records of every realized instance (for status and `cloud down`)."""
    for path in sorted((layout.cloud_dir / "instances").glob("*.json")):
        record = PidRecord.load(path)
        if record is not None:
            yield path.stem, record
