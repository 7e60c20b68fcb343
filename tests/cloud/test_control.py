"""`eucadb cloud up | down | status` on a cloud of its own: idempotent up, the network it makes,
the config it writes, and a down that leaves no process behind (even with a realized instance)."""
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

        # the API server crashes: its in-memory cloud is gone, so `up` starts a new one (new port,
        # new realizer) and the old instance, which the new cloud does not know, is stopped
        api = next(d for d in cloud.status()["daemons"] if d["name"] == "api")
        os.kill(api["pid"], signal.SIGKILL)
        cloud.up()
        assert cloud.endpoint != first["endpoint"]
        wait_for(lambda: connect_answer(instance["PrivateIpAddress"]) is None, 15, "forgotten instance stopped")
        assert not cloud.instance_root(instance["InstanceId"]).exists()
        image = cloud.install_image("probe.py")
        instance = run_instance(cloud, image, cloud.status()["zones"][0]["subnet"])
        wait_for(lambda: connect_answer(instance["PrivateIpAddress"]), 15, "new instance listening")

        out = cloud.cli("cloud", "down").stdout
        assert instance["InstanceId"] in out and "api" in out and "realizer" in out
        assert not cloud.leftovers() and not cloud.leftover_cgroups()
        assert connect_answer(instance["PrivateIpAddress"]) is None
        assert cloud.status()["state"] == "down"
        assert "endpoint_url" not in (yaml.safe_load((cloud.home / "eucadb.yaml").read_text()) or {}).get("cloud", {})
        assert cloud.cli("cloud", "down").stdout.strip() == "stopped: nothing was running"
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
