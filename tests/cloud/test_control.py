"""`eucadb cloud up | down | status` on a cloud of its own: idempotent up, the network it makes,
the config it writes, a down that leaves no process behind (even with a realized instance) and
deletes nothing, and a control plane that survives a crash of its API and refuses a state file it
cannot trust."""
from __future__ import annotations

import json
import os
import signal

import pytest
import yaml
from helpers import run_instance
from localcloud import LocalCloud, connect_answer, wait_for

pytestmark = pytest.mark.slow


def test_up_is_idempotent_and_down_leaves_nothing():
    cloud = LocalCloud()
    try:
        cloud.up()
        first = cloud.status()
        config = yaml.safe_load((cloud.home / "eucadb.yaml").read_text())
        assert config["cloud"]["endpoint_url"] == cloud.endpoint.rstrip("/")
        assert cloud.endpoint.startswith("http://127.0.0.1:")
        assert first["state"] == "up" and all(d["running"] for d in first["daemons"])
        assert first["vpc"]["cidr"] == cloud.vpc_cidr
        assert [z["cidr"] for z in first["zones"]] == [f"{cloud.prefix}.{i}.0/24"
                                                       for i in range(1, len(first["zones"]) + 1)]
        ec2 = cloud.client("ec2")
        assert not ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"], \
            "no default VPC: nothing can get a non-loopback address"

        cloud.cli("cloud", "up")
        again = cloud.status()
        assert again["endpoint"] == first["endpoint"] and again["vpc"] == first["vpc"]
        assert [d["pid"] for d in again["daemons"]] == [d["pid"] for d in first["daemons"]]
        assert "INSTANCES" in cloud.cli("cloud", "status").stdout.upper()

        image = cloud.install_image("probe.py")
        assert cloud.install_image("probe.py") == image, "same content, same image"
        instance = run_instance(cloud, image, first["zones"][0]["subnet"])
        wait_for(lambda: connect_answer(instance["PrivateIpAddress"]), 15, "instance listening")
        listed = {i["id"]: i for i in cloud.status()["instances"]}
        assert listed[instance["InstanceId"]]["process"] == "running"

        # the API server crashes: its saved control plane comes back, on the same port, and the
        # instance it knows keeps running (adopted by the new realizer, not booted twice)
        api = next(d for d in cloud.status()["daemons"] if d["name"] == "api")
        os.kill(api["pid"], signal.SIGKILL)
        pid = cloud.pid_record(instance["InstanceId"])["pid"]
        cloud.up()
        assert cloud.endpoint == first["endpoint"]
        assert ec2.describe_vpcs()["Vpcs"], "the root key survives the crash: earlier clients keep working"
        listed = {i["id"]: i for i in cloud.status()["instances"]}
        assert listed[instance["InstanceId"]]["state"] == "running"
        assert cloud.pid_record(instance["InstanceId"])["pid"] == pid
        assert cloud.install_image("probe.py") == image, "the image survived with its id"

        out = cloud.cli("cloud", "down").stdout
        assert instance["InstanceId"] in out and "api" in out and "realizer" in out
        assert not cloud.leftovers() and not cloud.leftover_cgroups()
        assert connect_answer(instance["PrivateIpAddress"]) is None
        assert cloud.status()["state"] == "down"
        assert "endpoint_url" not in (yaml.safe_load((cloud.home / "eucadb.yaml").read_text()) or {}).get("cloud", {})
        assert cloud.cli("cloud", "down").stdout.strip() == "stopped: nothing was running"
        assert cloud.instance_root(instance["InstanceId"]).is_dir(), "down deletes nothing"

        # up again: the same cloud, and the instance (still `running` there) is booted again
        cloud.up()
        assert cloud.endpoint == first["endpoint"] and cloud.status()["vpc"] == first["vpc"]
        wait_for(lambda: connect_answer(instance["PrivateIpAddress"]), 15, "instance booted again")
        cloud.cli("cloud", "down")
    finally:
        if cloud.leftovers():
            cloud.down()
        cloud.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="instances run as another user only when root")
def test_up_refuses_a_data_dir_the_instance_user_cannot_reach(tmp_path):
    cloud = LocalCloud()
    try:
        hidden = tmp_path / "private"
        hidden.mkdir(mode=0o700)
        cloud.env["EUCADB_CLOUD_DATA_DIR"] = str(hidden / "data")
        done = cloud.cli("cloud", "up", check=False)
        assert done.returncode == 1 and "not traversable by postgres" in done.stderr
        assert not cloud.leftovers()
    finally:
        cloud.close()


def test_status_json_when_down(home):
    cloud = LocalCloud()
    try:
        status = json.loads(cloud.cli("cloud", "status", "-o", "json").stdout)
        assert status["state"] == "down" and status["instances"] == []
    finally:
        cloud.close()


STATE_FILE = ("data", "state", "control-plane.pickle")


def _damage_header(path):
    """A file from another moto: same layout, another version in its header."""
    head, _, rest = path.read_bytes().partition(b"\n")
    doc = json.loads(head.split(b" ", 1)[1])
    doc["moto"] = "4.0.0"
    path.write_bytes(head.split(b" ", 1)[0] + b" " + json.dumps(doc).encode() + b"\n" + rest)


def _undecodable(path):
    """A payload whose digest matches but which is not a pickle of moto's state: the API refuses it."""
    import hashlib
    head, _, _ = path.read_bytes().partition(b"\n")
    doc, payload = json.loads(head.split(b" ", 1)[1]), b"not a pickle"
    doc.update(sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
    path.write_bytes(head.split(b" ", 1)[0] + b" " + json.dumps(doc).encode() + b"\n" + payload)


@pytest.mark.parametrize("damage", [
    pytest.param(_undecodable, id="undecodable"),
    pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-100]), id="truncated"),
    pytest.param(lambda p: p.write_bytes(b"\x00" * 64 + p.read_bytes()[64:]), id="overwritten"),
    pytest.param(_damage_header, id="foreign-moto-version"),
])
def test_an_unusable_state_file_stops_up_and_is_kept(damage):
    cloud = LocalCloud()
    try:
        cloud.up()
        cloud.client("ec2").create_volume(Size=1, AvailabilityZone=cloud.status()["zones"][0]["zone"])
        cloud.cli("cloud", "down")
        path = cloud.base.joinpath(*STATE_FILE)
        damage(path)
        before = path.read_bytes()
        done = cloud.cli("cloud", "up", check=False)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and "kept" in lines[0], done.stderr
        assert path.read_bytes() == before, "the state file is never replaced"
        assert not cloud.leftovers()
        status = json.loads(cloud.cli("cloud", "status", "-o", "json").stdout)
        assert status["control_plane"]["path"] == str(path)
    finally:
        cloud.close()
