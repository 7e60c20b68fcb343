"""Helpers for end-to-end tests: run the real `eucadb` command against an embedded cloud in a
temporary home whose VPC is a random loopback /16 (concurrent test runs never share addresses)."""
from __future__ import annotations

import atexit
import fcntl
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

EUCADB = str(Path(sys.executable).parent / "eucadb")


LOCK_DIR = Path("/tmp/eucadb-test-vpcs")


def _listening_octets() -> set[int]:
    """Second octets of 127.X.*.* addresses something listens on (IPv4 /proc/net/tcp, hex LE)."""
    used = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        octets = bytes.fromhex(local.split(":")[0])[::-1]
        if octets[0] == 127 and state == "0A":
            used.add(octets[1])
    return used


def allocate_vpc() -> tuple[str, Any]:
    """A free 127.X.0.0/16 and the open lock file that reserves it (keep it open while in use), so
    test clouds of concurrent runs never share instance addresses."""
    LOCK_DIR.mkdir(exist_ok=True)
    os.chmod(LOCK_DIR, 0o1777)
    candidates = list(range(81, 251))
    random.shuffle(candidates)
    busy = _listening_octets()
    for octet in candidates:
        if octet in busy:
            continue
        lock = open(LOCK_DIR / f"127.{octet}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return f"127.{octet}.0.0/16", lock
    raise RuntimeError("no free 127.X.0.0/16 for a test cloud")


@dataclass
class Env:
    home: Path
    data_dir: Path
    vpc: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.vpc:
            self.vpc, self._vpc_lock = allocate_vpc()

    def environ(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
        env.update({"EUCADB_HOME": str(self.home), "EUCADB_CLOUD_DATA_DIR": str(self.data_dir),
                    "EUCADB_CLOUD_VPC_CIDR": self.vpc, **self.extra, **more})
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 600, **env: str):
        result = subprocess.run([EUCADB, *args], capture_output=True, text=True, timeout=timeout,
                                env=self.environ(**env))
        if check and result.returncode != 0:
            raise AssertionError(f"eucadb {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def client(self, service: str):
        from eucadb.config import load
        cfg = load(env=self.environ())
        return boto3.client(service, endpoint_url=cfg["cloud.endpoint_url"], region_name=cfg["cloud.region"],
                            aws_access_key_id=cfg["cloud.access_key_id"] or "testing",
                            aws_secret_access_key=cfg["cloud.secret_access_key"] or "testing")

    def app(self):
        from eucadb.app import App
        from eucadb.config import load
        return App(load(env=self.environ()))


def make_env(tmp: Path) -> Env:
    """A home and a cloud data dir the instance user (`postgres` when root) can traverse.

    Not under pytest's basetemp: every pytest session resets `/tmp/pytest-of-<user>` to mode 0700,
    which would lock the instances of a concurrently running session out of their files."""
    root = Path(tempfile.mkdtemp(prefix=f"eucadb-e2e-{tmp.name}-", dir="/tmp"))
    os.chmod(root, 0o755)
    atexit.register(shutil.rmtree, root, True)
    home, data = root / "home", root / "data"
    data.mkdir(mode=0o755)
    return Env(home=home, data_dir=data)


def sibling(cloud: Env, tmp: Path, **properties: str) -> Env:
    """A new eucadb home (so a new deployment) using `cloud`'s embedded cloud and image."""
    env = make_env(tmp)
    env.home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(cloud.home / "eucadb.yaml", env.home / "eucadb.yaml")  # 0600: it holds the cloud's root key
    env.vpc, env.data_dir, env.image = cloud.vpc, cloud.data_dir, cloud.image
    sets = {"services.database.worker.image": cloud.image, **properties}
    env.run("property", "set", *(f"{k}={v}" for k, v in sets.items()))
    return env


def module_cloud(name: str, **properties: str):
    """A module-scoped `cloud` fixture: an embedded cloud with the local image installed (and
    `properties` set), brought down after the module even when its set-up fails."""
    import pytest

    @pytest.fixture(scope="module")
    def cloud(tmp_path_factory):
        env = make_env(tmp_path_factory.mktemp(name))
        try:
            start_cloud(env)
            if properties:
                env.run("property", "set", *(f"{k}={v}" for k, v in properties.items()))
            yield env
        finally:
            env.run("cloud", "down", check=False)
    return cloud


def start_cloud(env: Env) -> Env:
    env.run("cloud", "up")
    env.image = env.run("image", "install", "--local").stdout.strip().split()[-1]
    return env


def deployment_resources(env, deployment: str) -> dict[str, list]:
    """Everything in the cloud that carries this deployment's name or tag."""
    ec2, iam = env.client("ec2"), env.client("iam")
    asg, sm = env.client("autoscaling"), env.client("secretsmanager")
    tag = [{"Name": "tag:eucadb:deployment", "Values": [deployment]}]
    from eucadb.workflow.deployment import Names
    names = Names(deployment)
    return {
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        "volumes": [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]],
        "instances": [i["InstanceId"] for r in ec2.describe_instances(Filters=tag)["Reservations"]
                      for i in r["Instances"] if i["State"]["Name"] != "terminated"],
        "launch_templates": [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
                             if t["LaunchTemplateName"] == names.db],
        "asgs": [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
                 if g["AutoScalingGroupName"] == names.db],
        "certificates": [c["ServerCertificateName"] for c in
                         iam.list_server_certificates()["ServerCertificateMetadataList"]
                         if c["ServerCertificateName"] == names.server_certificate],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"] == names.db],
        "profiles": [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
                     if p["InstanceProfileName"] == names.db],
        "secrets": [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"] == names.secret],
    }
