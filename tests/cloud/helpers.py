"""Building blocks the cloud tests share: a role + instance profile + launch template + ASG, exactly
as eucadb's launch workflow will create them (plain boto3 against the embedded endpoint)."""
from __future__ import annotations

import base64
import json
import os
import pwd
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from localcloud import RUNTIME_CACHE, LocalCloud, wait_for


@dataclass
class Group:
    cloud: LocalCloud
    name: str
    role: str
    user_data: dict
    ec2: Any = field(repr=False)
    asg: Any = field(repr=False)

    def instances(self) -> list[dict]:
        """InService instances (describing the group is what makes moto replace terminated ones)."""
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group["Instances"]]
        if not ids:
            return []
        found = [i for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        return [i for i in found if i["State"]["Name"] == "running"]

    def one(self) -> dict:
        return wait_for(lambda: self.instances()[0] if self.instances() else None, 10, f"{self.name} instance")

    def delete(self) -> None:
        self.asg.delete_auto_scaling_group(AutoScalingGroupName=self.name, ForceDelete=True)


def make_group(cloud: LocalCloud, image: str, subnets: list[str], size: int = 1,
               user_data: dict | None = None, grace: int | None = None) -> Group:
    """`user_data` adds to what every instance gets; `grace` is the HealthCheckGracePeriod (AWS's
    default, 0, when None)."""
    ec2, asg, iam = cloud.client("ec2"), cloud.client("autoscaling"), cloud.client("iam")
    name = "t-" + uuid.uuid4().hex[:8]
    iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    iam.put_role_policy(RoleName=f"{name}-role", PolicyName="probe", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:AttachVolume", "Resource": "*"}]}))
    iam.create_instance_profile(InstanceProfileName=f"{name}-profile")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{name}-profile", RoleName=f"{name}-role")
    user_data = {"endpoint": cloud.endpoint, "group": name, **(user_data or {})}
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t2.micro",
        "IamInstanceProfile": {"Name": f"{name}-profile"},
        "UserData": base64.b64encode(json.dumps(user_data).encode()).decode()})
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        MinSize=size, MaxSize=size, DesiredCapacity=size, VPCZoneIdentifier=",".join(subnets),
        **({} if grace is None else {"HealthCheckGracePeriod": grace}))
    return Group(cloud, name, f"{name}-role", user_data, ec2, asg)


def run_instance(cloud: LocalCloud, image: str, subnet: str) -> dict:
    """A plain RunInstances instance (no ASG), for volume tests that pin the zone."""
    ec2 = cloud.client("ec2")
    user_data = json.dumps({"endpoint": cloud.endpoint})  # botocore base64-encodes RunInstances' UserData
    return ec2.run_instances(ImageId=image, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                             SubnetId=subnet, UserData=user_data)["Instances"][0]


# run by another user with the image runtime (our own interpreter lives under /root, mode 0700)
HTTP = """
import json, sys, urllib.error, urllib.request
method, url, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=2) as r:
        print(json.dumps([r.status, r.read().decode()]))
except urllib.error.HTTPError as exc:
    print(json.dumps([exc.code, ""]))
except OSError as exc:  # nothing listening (yet): status 0
    print(json.dumps([0, str(exc)]))
"""


def as_user(cloud: LocalCloud, instance_id: str | None, user: str) -> Callable[..., tuple[int, str]]:
    """An HTTP client running as `user`, inside `instance_id`'s cgroup (None: outside any)."""
    account = pwd.getpwnam(user)
    record = cloud.pid_record(instance_id) if instance_id else None
    python = next(RUNTIME_CACHE.glob("py*/.complete")).parent / "bin" / "python"

    def enter() -> None:
        if record is not None:
            Path(record["cgroup"], "cgroup.procs").write_text(str(os.getpid()))
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    def http(method: str, url: str, headers: dict | None = None) -> tuple[int, str]:
        done = subprocess.run([str(python), "-c", HTTP, method, url, json.dumps(headers or {})], cwd="/",
                              capture_output=True, text=True, timeout=30, preexec_fn=enter, env={})
        assert done.returncode == 0, done.stderr
        status, body = json.loads(done.stdout)
        return status, body
    return http


def inside(cloud: LocalCloud, instance: dict) -> Callable[..., tuple[int, str]]:
    """HTTP from one of the instance's own processes (its cgroup, its user): what IMDS answers."""
    return as_user(cloud, instance["InstanceId"], cloud.instance_user)
