"""Gaps in moto that the embedded cloud fills, so eucadb's product path stays plain AWS.

Each fix names the moto behaviour it corrects; remove it when moto does the right thing.
"""
from __future__ import annotations

from moto.autoscaling import models as autoscaling_models
from moto.ebs import models as ebs_models
from moto.ec2.exceptions import InvalidSnapshotIdError
from moto.ec2.models import launch_templates
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import parse_user_data

EBS_BLOCK_SIZE = 512 * 1024  # what AWS's StartSnapshot answers; moto 5.2 says 512 bytes


def _user_data_as_base64() -> None:
    """CreateLaunchTemplateVersion keeps UserData as a plain str, while moto's autoscaling code
    asserts a Base64EncodedString when it replaces an instance from that version (moto 5.2:
    AssertionError → HTTP 500 on TerminateInstances of a group member)."""
    original = launch_templates.LaunchTemplateVersion.__init__
    if getattr(original, "_eucadb_fixed", False):
        return

    def init(self, template, number, data, description):  # type: ignore[no-untyped-def]
        if isinstance(data.get("UserData"), str):
            data = {**data, "UserData": parse_user_data(data["UserData"])}
        original(self, template, number, data, description)

    init._eucadb_fixed = True  # type: ignore[attr-defined]
    launch_templates.LaunchTemplateVersion.__init__ = init


def _ebs_direct_snapshots() -> None:
    """moto's EBS direct snapshots use 512-byte blocks (AWS: 512 KiB; a client honouring the answered
    BlockSize works either way, but a 1 GiB disk would take two million requests), and EC2 describes
    them as `completed` from StartSnapshot on, while AWS says `pending` until CompleteSnapshot — so an
    interrupted upload would look finished."""
    backend = ebs_models.EBSBackend
    if getattr(backend.start_snapshot, "_eucadb_fixed", False):
        return
    start, complete = backend.start_snapshot, backend.complete_snapshot

    def start_snapshot(self, volume_size, tags, description):  # type: ignore[no-untyped-def]
        snapshot = start(self, volume_size, tags, description)
        snapshot.block_size = EBS_BLOCK_SIZE
        self.ec2_backend.snapshots[snapshot.snapshot_id].status = "pending"
        return snapshot

    def complete_snapshot(self, snapshot_id):  # type: ignore[no-untyped-def]
        status = complete(self, snapshot_id)
        self.ec2_backend.snapshots[snapshot_id].status = status
        return status

    start_snapshot._eucadb_fixed = True  # type: ignore[attr-defined]
    backend.start_snapshot, backend.complete_snapshot = start_snapshot, complete_snapshot


def _register_image_mapping() -> None:
    """moto's RegisterImage keeps only Name and Description: an image registered from a snapshot
    would describe a made-up root snapshot on /dev/sda1. Keep the root device, its snapshot
    (which must exist, as in AWS), the architecture, virtualization type and boot mode."""
    original = AmisResponse.register_image
    if getattr(original, "_eucadb_fixed", False):
        return

    def register_image(self):  # type: ignore[no-untyped-def]
        mappings = self._get_param("BlockDeviceMappings", [])
        root_name = self._get_param("RootDeviceName") or "/dev/sda1"
        root = next((m for m in mappings if m.get("DeviceName") == root_name), None)
        snapshot_id = (root or {}).get("Ebs", {}).get("SnapshotId")
        if snapshot_id and snapshot_id not in self.ec2_backend.snapshots:
            raise InvalidSnapshotIdError()
        result = original(self)
        ami = self.ec2_backend.amis[result.result["ImageId"]]
        ami.root_device_name = root_name
        for attribute, param in (("architecture", "Architecture"), ("boot_mode", "BootMode"),
                                 ("virtualization_type", "VirtualizationType")):
            setattr(ami, attribute, self._get_param(param) or getattr(ami, attribute))
        if snapshot_id:
            self.ec2_backend.snapshots.pop(ami.ebs_snapshot.id, None)  # moto's made-up one
            ami.ebs_snapshot = self.ec2_backend.snapshots[snapshot_id]
            ami.ebs_snapshot.from_ami = ami.id  # DeleteSnapshot now refuses while the image exists
            ami.root_device_type = "ebs"
        return result

    register_image._eucadb_fixed = True  # type: ignore[attr-defined]
    AmisResponse.register_image = register_image


def _grace_period_default() -> None:
    """CreateAutoScalingGroup's HealthCheckGracePeriod defaults to 0 in AWS; moto 5.2 makes both an
    omitted one and an explicit 0 into 300 s, so a group asking for no grace would wait five minutes
    before its health check replaces a stopped instance."""
    backend = autoscaling_models.AutoScalingBackend
    original = backend.create_auto_scaling_group
    if getattr(original, "_eucadb_fixed", False):
        return

    def create_auto_scaling_group(self, **kwargs):  # type: ignore[no-untyped-def]
        group = original(self, **kwargs)
        group.health_check_grace_period = int(kwargs.get("health_check_period") or 0)
        return group

    create_auto_scaling_group._eucadb_fixed = True  # type: ignore[attr-defined]
    backend.create_auto_scaling_group = create_auto_scaling_group


def apply() -> None:
    _user_data_as_base64()
    _grace_period_default()
    _ebs_direct_snapshots()
    _register_image_mapping()
