"""One embedded cloud per test session (it takes ~3 s to start); tests that need a cloud of their
own (up/down cycles) make one with `LocalCloud`. Teardown asserts nothing was left running."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from localcloud import LocalCloud, wait_for  # noqa: E402


@pytest.fixture(scope="session")
def cloud():
    cloud = LocalCloud()
    try:
        cloud.up()
        cloud.images = {name: cloud.install_image(f"{name}.py") for name in ("probe", "pg_boot")}
        yield cloud
    finally:
        cloud.down()
        try:
            wait_for(lambda: not cloud.leftovers(), 10, "no process of the test cloud left")
            assert not cloud.listening(), f"something still listens on {cloud.prefix}.*"
            assert not cloud.leftover_cgroups()
        finally:
            cloud.close()


@pytest.fixture(scope="session")
def network(cloud):
    """Zone -> subnet id of the session cloud's VPC."""
    subnets = cloud.client("ec2").describe_subnets()["Subnets"]
    return {s["AvailabilityZone"]: s["SubnetId"] for s in subnets if s["CidrBlock"].startswith(cloud.prefix)}
