"""A deployment made by `eucadb up` loses nothing to `down` + `up`, a kill -9 of the cloud's API, or a
simulated host reboot (kill -9 of every eucadb process, then `up`): every acknowledged datapoint and
usage event is readable after, and the instance, volumes, group, image and security groups are the
same ones (same ids, one of each). `eucadb destroy --yes` then leaves nothing. Real cloud, real
PostgreSQL, the real `eucadb` command."""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from e2e import make_env
from pg import free_port
from serving import FAST, reporting_post

pytestmark = pytest.mark.slow


class Usage:
    """What the test wrote through the running server and was told was stored."""

    def __init__(self, env, port: int):
        self.env, self.port = env, port
        key = json.loads(env.run("credentials", "create", "-o", "json").stdout)
        self.cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}/services/CloudWatch",
                               region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                               aws_secret_access_key=key["secret_access_key"])
        self.admin = json.loads(env.run("credentials", "create", "--admin", "-o", "json").stdout)
        self.start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
        self.datapoints = 0
        self.volumes: list[str] = []

    def write(self, phase: str, count: int = 5) -> None:
        now = datetime.now(timezone.utc)
        for i in range(count):
            self.cw.put_metric_data(Namespace="Durable", MetricData=[
                {"MetricName": "Writes", "Value": 1.0, "Timestamp": now - timedelta(seconds=i)}])
            self.datapoints += 1
        ids = [f"vol-{phase}-{i}" for i in range(3)]
        events = [{"ts": (self.start + timedelta(minutes=10)).isoformat(), "account": "acct1",
                   "resource_type": "volume", "resource_id": r, "event": "create",
                   "attributes": {"size_gib": 10}} for r in ids]
        request = reporting_post(f"http://127.0.0.1:{self.port}/services/Reporting/events", events, self.admin)
        assert json.loads(urllib.request.urlopen(request, timeout=10).read())["recorded"] == len(ids)
        self.volumes += ids

    def check(self) -> None:
        now = datetime.now(timezone.utc)
        stats = self.cw.get_metric_statistics(Namespace="Durable", MetricName="Writes",
                                              StartTime=self.start, EndTime=now + timedelta(minutes=5),
                                              Period=3600 * 3, Statistics=["SampleCount"])
        assert int(sum(p["SampleCount"] for p in stats["Datapoints"])) == self.datapoints
        report = json.loads(self.env.run("report", "usage", "--start", self.start.isoformat(),
                                         "--end", now.isoformat(), "--format", "json").stdout)
        rows = report["rows"] if isinstance(report, dict) else report
        assert sorted(r["item"] for r in rows if r["resource_type"] == "volume") == sorted(self.volumes)


def resources(env) -> dict[str, list[str]]:
    ec2, asg = env.client("ec2"), env.client("autoscaling")
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    return {"instances": sorted(i["InstanceId"] for i in live),
            "states": sorted(i["State"]["Name"] for i in live),
            "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
            "groups": sorted(g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]),
            "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
            "security_groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
            "templates": sorted(t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"])}


def cloud_status(env) -> dict:
    return json.loads(env.run("cloud", "status", "-o", "json").stdout)


def wait_ready(port: int, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"serve on {port} not ready after {timeout}s")


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_everything(env) -> list[int]:
    """A host that loses power: every process of this eucadb, no chance to clean up."""
    from eucadb.cloud.local.procs import PidRecord
    status = cloud_status(env)
    pids = [d["pid"] for d in status["daemons"] if d["running"]]
    for path in (env.home / "cloud" / "instances").glob("*.json"):
        record = PidRecord.load(path)
        pids += record.members() if record else []
    serve = PidRecord.load(env.home / "serve.pid")
    pids += [serve.pid] if serve and serve.alive() else []
    for pid in pids:
        kill(pid)
    return pids


def test_nothing_is_lost_to_down_a_crash_or_a_reboot_and_destroy_removes_everything(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("durable"))  # a short path: PostgreSQL's socket lives under it
    port = free_port()
    env.extra.update({"EUCADB_SERVE_PORT": str(port), **FAST})
    try:
        env.run("up")
        usage = Usage(env, port)
        usage.write("first")
        before = resources(env)
        assert len(before["instances"]) == len(before["groups"]) == len(before["images"]) == 1
        assert before["states"] == ["running"]
        volume = next(v for v in cloud_status(env)["volumes"] if v["device"] == "/dev/sdf")["id"]
        cluster = json.loads(env.run("status", "-o", "json").stdout)["database"]["cluster"]

        def same_deployment(phase: str, rebooted: bool = True) -> None:
            after = resources(env)
            assert after == before, f"after {phase}"
            now = json.loads(env.run("status", "-o", "json").stdout)["database"]["cluster"]
            assert now["initialised_at"] == cluster["initialised_at"], f"a new cluster after {phase}"
            if rebooted:   # the instance came back on its kept volume: the same cluster, a new server
                assert now["started_at"] > cluster["started_at"] and now["resumed_from_kept_volume"], now
            usage.check()
            usage.write(phase)

        env.run("down")
        assert (env.data_dir / "volumes" / volume).is_dir(), "down deletes nothing"
        env.run("up")
        same_deployment("down-up")

        api = next(d for d in cloud_status(env)["daemons"] if d["name"] == "api")
        kill(api["pid"])
        env.run("cloud", "up")
        wait_ready(port)
        same_deployment("api-crash", rebooted=False)

        assert len(kill_everything(env)) >= 4
        env.run("up")
        same_deployment("reboot")
        usage.check()

        saved = cloud_status(env)["control_plane"]
        assert saved["size"] > 0 and saved["written"] and saved["problem"] is None

        out = env.run("destroy", "--yes").stdout
        assert str(env.data_dir) in out
        assert not env.data_dir.exists() and not (env.home / "cloud").exists()
        teardown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
        assert teardown["kind"] == "teardown" and teardown["state"] == "succeeded"
        assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _ours(p, env)]
    finally:
        env.run("destroy", "--yes", check=False)


def _ours(proc: Path, env) -> bool:
    try:
        environ = (proc / "environ").read_bytes()
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return False
    return f"EUCADB_HOME={env.home}".encode() in environ.split(b"\0") or cwd.startswith(str(env.data_dir))
