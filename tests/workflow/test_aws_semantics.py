"""AWS behaviours moto does not have, reproduced by the embedded cloud: the answers AWS gives while
it is eventually consistent (injected), and a VPC that does not span every zone of the region.
"""
from __future__ import annotations

import json

import pytest

from e2e import make_env, sibling, start_cloud
from eucadb.cloud.local.faults import ENV
from eucadb.workflow.deployment import current_deployment

pytestmark = pytest.mark.slow

NOT_PROPAGATED = ("You must use a valid fully-formed launch template. Value (eucadb-db) for parameter "
                  "iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
BAD_INPUT = "Max bound, 1, must be greater than or equal to min bound, 2"
STILL_DELETING = ("You can't create this secret because a secret with this name is already scheduled "
                  "for deletion.")
SUBNET_ZONES = ("us-east-1b", "us-east-1c")
FAULTS = [  # taken in order, per action
    {"action": "CreateAutoScalingGroup", "code": "ValidationError", "message": BAD_INPUT, "times": 1},
    {"action": "CreateAutoScalingGroup", "code": "ValidationError", "message": NOT_PROPAGATED, "times": 3},
    {"action": "CreateSecret", "code": "InvalidRequestException", "message": STILL_DELETING, "times": 2},
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("consistency"))
    env.extra[ENV] = json.dumps(FAULTS)
    env.extra["EUCADB_CLOUD_ZONES"] = ",".join(SUBNET_ZONES)  # the region has more zones than these
    try:
        yield start_cloud(env)
    finally:
        env.run("cloud", "down", check=False)


def injected(cloud) -> list[str]:
    log = next(cloud.home.rglob("api.log")).read_text()
    return [line.split("injected fault: ", 1)[1] for line in log.splitlines() if "injected fault: " in line]


def test_propagation_delays_are_retried_and_real_errors_are_not(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    first = env.run("workflow", "launch", check=False)
    # the ValidationError that is bad input fails the launch at once: had it been retried, the
    # next three (propagation) answers and then success would have followed
    assert first.returncode == 1 and BAD_INPUT in first.stderr
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "rolled_back" and "autoscaling_group" in shown["error"]
    assert injected(cloud) == ["CreateSecret answers InvalidRequestException"] * 2 + [
        "CreateAutoScalingGroup answers ValidationError"]

    env.run("workflow", "launch")  # the three "not yet propagated" answers are ridden out
    assert injected(cloud)[3:] == ["CreateAutoScalingGroup answers ValidationError"] * 3
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "succeeded" and shown["deployment"] == current_deployment(env.app().store)
    env.run("workflow", "teardown", "--delete-volume")


def test_with_no_zones_configured_the_launch_uses_the_zones_the_vpc_has_subnets_in(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    all_zones = [z["ZoneName"] for z in env.client("ec2").describe_availability_zones()["AvailabilityZones"]]
    assert set(all_zones) > set(SUBNET_ZONES)
    env.run("workflow", "launch")
    admission = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]["steps"][0]["resources"]
    assert admission["zones"] == list(SUBNET_ZONES) and admission["volume_zone"] == SUBNET_ZONES[0]
    # a zone of the region (so the property accepts it) without a subnet: admission says so
    env.run("property", "set", "services.database.worker.availability_zones=us-east-1a")
    failed = env.run("workflow", "launch", check=False)
    assert failed.returncode == 1 and "has no subnet in zone(s) us-east-1a" in failed.stderr
    env.run("property", "reset", "services.database.worker.availability_zones")
    env.run("workflow", "teardown", "--delete-volume")
