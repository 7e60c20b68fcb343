"""The instance realizer: makes the cloud's running DB-image instances real processes on this machine.

It polls the cloud like an operator's tooling would (moto applies ASG replacements lazily, when the
groups are described), then for each instance decides one of: boot, adopt (after our own restart, by
pid file), keep, halt (stopped), destroy (terminated). Each realized instance gets its metadata
service on <private ip>:<metadata port> before its boot program starts. A boot program that exits by
itself is not restarted: a VM whose process died is still a running VM.
"""
from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from eucadb.cloud.client import CloudClients
from eucadb.cloud.local import disks, instances
from eucadb.cloud.local.identity import Identities, InstanceView
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.metadata import MetadataServer
from eucadb.cloud.local.procs import PidRecord
from eucadb.config import Config
from eucadb.errors import CloudError

log = logging.getLogger(__name__)
DB_IMAGE_TAG = ("eucadb:image", "db")


@dataclass
class Realized:
    """An instance we run: its process record (and Popen when we are its parent) and its IMDS."""
    instance_id: str
    record: PidRecord
    imds: MetadataServer
    proc: subprocess.Popen | None = None


@dataclass(frozen=True)
class CloudView:
    """One poll's facts: instances (with their reservation owner), DB images, attachments."""
    instances: dict[str, tuple[dict, str]]
    db_images: frozenset[str]
    attachments: dict[str, dict[str, str]]  # instance id -> {device: volume id}


class Realizer:
    def __init__(self, config: Config, clients: CloudClients):
        self.layout = Layout.from_config(config)
        self.clients = clients
        self.port = config["cloud.metadata_port"]
        self.stop_timeout = config["cloud.stop_timeout"]
        self.interval = config["cloud.poll_interval"]
        self.identities = Identities(clients, config["cloud.region"])
        self.realized: dict[str, Realized] = {}

    # facts -----------------------------------------------------------------------------------
    def _pages(self, service: str, operation: str, key: str, **params: Any) -> list[dict]:
        paginator = self.clients.client(service).get_paginator(operation)
        pages = self.clients.guard(lambda: list(paginator.paginate(**params)), f"{service}.{operation}")
        return [item for page in pages for item in page[key]]

    def observe(self) -> CloudView:
        # describing the groups is what makes moto launch ASG replacements
        self._pages("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups")
        found: dict[str, tuple[dict, str]] = {}
        for reservation in self._pages("ec2", "describe_instances", "Reservations"):
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = (instance, reservation.get("OwnerId", ""))
        images = self.clients.call("ec2", "describe_images", Filters=[
            {"Name": f"tag:{DB_IMAGE_TAG[0]}", "Values": [DB_IMAGE_TAG[1]]}])["Images"]
        attachments: dict[str, dict[str, str]] = {}
        for volume in self._pages("ec2", "describe_volumes", "Volumes"):
            for att in volume.get("Attachments", []):
                if att.get("State") in ("attaching", "attached"):
                    attachments.setdefault(att["InstanceId"], {})[att["Device"]] = volume["VolumeId"]
        return CloudView(found, frozenset(i["ImageId"] for i in images), attachments)

    # one poll --------------------------------------------------------------------------------
    def poll(self) -> None:
        view = self.observe()
        for instance_id, (instance, owner) in view.instances.items():
            state = instance["State"]["Name"]
            devices = {d: v for d, v in view.attachments.get(instance_id, {}).items()
                       if d != instance.get("RootDeviceName")}
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
        for root in (self.layout.data_dir / "instances").glob("*"):
            if root.name not in view.instances:  # the cloud forgot it: nothing may keep running
                self._destroy(root.name)

    def _realize(self, instance: dict, owner: str, devices: dict[str, str]) -> None:
        instance_id = instance["InstanceId"]
        current = self.realized.get(instance_id)
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
        imds = MetadataServer(view, self.identities, self.port)
        try:
            record = PidRecord.load(self.layout.instance_pidfile(instance_id))
            proc = None
            if record is not None and (record.info or {}).get("launch") == view.launched:
                log.info("adopted %s (pid %d, %s)", instance_id, record.pid,
                         "running" if record.members() else "exited")
            else:
                disks.prepare_root(self.layout, instance_id)
                # add-only: volumes attached at launch (template block devices). Attach/detach
                # through the API are plugged synchronously by the gateway; a poll's view can be stale
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
        instances.halt(self.layout, instance_id, self.stop_timeout, proc)

    def _destroy(self, instance_id: str) -> None:
        proc = self._forget(instance_id)
        if self.layout.instance_root(instance_id).exists() or \
                self.layout.instance_pidfile(instance_id).exists():
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
