"""Volumes with AWS attach semantics, plugged in as <instance root>/dev/<device>; data survives
detach/attach to a replacement; snapshots copy data; delete frees the directories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from helpers import make_group, run_instance
from localcloud import wait_for

pytestmark = pytest.mark.slow


def _code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def _state(ec2, volume_id: str) -> str:
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"]


@pytest.fixture
def instance_a(cloud, network):
    instance = run_instance(cloud, cloud.images["probe"], network["us-east-1a"])
    wait_for(lambda: cloud.report(instance["InstanceId"]), 15, "probe report")
    yield instance
    cloud.client("ec2").terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_attach_follows_aws_rules_and_plugs_the_device(cloud, instance_a):
    ec2 = cloud.client("ec2")
    iid = instance_a["InstanceId"]
    other_zone = ec2.create_volume(Size=1, AvailabilityZone="us-east-1b")["VolumeId"]
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    spare = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    assert cloud.data_dir.joinpath("volumes", volume).is_dir()

    assert _code(lambda: ec2.attach_volume(VolumeId=other_zone, InstanceId=iid, Device="/dev/sdf")) == \
        "InvalidVolume.ZoneMismatch"
    ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device="/dev/sdf")
    device = cloud.instance_root(iid) / "dev" / "sdf"
    assert device.is_symlink() and Path(os.readlink(device)) == cloud.data_dir / "volumes" / volume
    assert _code(lambda: ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device="/dev/sdg")) == "VolumeInUse"
    assert _code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId=iid, Device="/dev/sdf")) == \
        "InvalidParameterValue"
    assert _code(lambda: ec2.delete_volume(VolumeId=volume)) == "VolumeInUse"

    report = wait_for(lambda: (r := cloud.report(iid)) and r["disk"] and r, 5, "probe writes its disk")
    assert f"written-by-{iid}" in report["disk"]

    ec2.detach_volume(VolumeId=volume)
    assert not device.exists() and _state(ec2, volume) == "available"
    for vol in (volume, other_zone, spare):
        ec2.delete_volume(VolumeId=vol)
        assert not cloud.data_dir.joinpath("volumes", vol).exists()


def test_volume_data_survives_detach_and_attach_to_a_replacement(cloud, network):
    ec2 = cloud.client("ec2")
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1c"]])
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1c")["VolumeId"]
    try:
        first = group.one()["InstanceId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")
        wait_for(lambda: f"written-by-{first}" in cloud.disk(first), 5, "first write")

        ec2.terminate_instances(InstanceIds=[first])
        assert _state(ec2, volume) == "available", "a terminated instance's volumes are freed"
        second = wait_for(lambda: [i for i in group.instances() if i["InstanceId"] != first], 10,
                          "replacement")[0]["InstanceId"]
        wait_for(lambda: cloud.report(second), 15, "replacement booted")
        ec2.attach_volume(VolumeId=volume, InstanceId=second, Device="/dev/sdf")
        disk = wait_for(lambda: f"written-by-{second}" in cloud.disk(second) and cloud.disk(second), 5,
                        "replacement sees its disk")
        assert f"written-by-{first}" in disk, "the first instance's data is on the volume"
    finally:
        group.delete()
    wait_for(lambda: _state(ec2, volume) == "available", 10, "volume freed by the group's deletion")
    ec2.delete_volume(VolumeId=volume)


def test_snapshot_copies_data_and_restores_into_a_new_volume(cloud):
    ec2 = cloud.client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    source = cloud.data_dir / "volumes" / volume
    (source / "nested").mkdir()
    (source / "nested" / "file").write_text("before")
    snapshot = ec2.create_snapshot(VolumeId=volume)
    assert snapshot["State"] == "completed"
    (source / "nested" / "file").write_text("after")     # changes after the snapshot are not in it

    restored = ec2.create_volume(SnapshotId=snapshot["SnapshotId"], AvailabilityZone="us-east-1b")["VolumeId"]
    copy = cloud.data_dir / "volumes" / restored
    assert (copy / "nested" / "file").read_text() == "before"
    assert copy.stat().st_mode & 0o777 == source.stat().st_mode & 0o777
    assert copy.stat().st_uid == source.stat().st_uid

    ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
    assert not (cloud.data_dir / "snapshots" / snapshot["SnapshotId"]).exists()
    for vol in (volume, restored):
        ec2.delete_volume(VolumeId=vol)


def test_a_volume_whose_data_cannot_be_made_is_refused_and_removed_without_hanging_the_api():
    """The gateway undoes a CreateVolume whose directory cannot be created by calling its own
    DeleteVolume — which takes the same lock as CreateVolume: the undo must run after it is released
    (it used to deadlock the API, and the client's read timed out)."""
    import shutil

    from botocore.config import Config

    from localcloud import LocalCloud
    own = LocalCloud()
    try:
        own.up()
        ec2 = own.client("ec2", Config(read_timeout=20, retries={"max_attempts": 1}))
        volumes = own.data_dir / "volumes"
        shutil.rmtree(volumes, ignore_errors=True)
        volumes.write_text("not a directory")            # mkdir of volumes/<id> fails
        assert _code(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)) == "InternalError"
        assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]] == []
    finally:
        own.down()
        own.close()
