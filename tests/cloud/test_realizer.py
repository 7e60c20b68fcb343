"""The realizer: ASG instances of the DB image become processes on their private IPs; terminated
ones stop; replacements are realized; other images run nothing; a restarted realizer adopts."""
from __future__ import annotations

import os
import signal

import pytest
from helpers import inside, make_group, run_instance
from localcloud import alive, connect_answer, wait_for, wait_for_absent

pytestmark = pytest.mark.slow


def test_asg_instance_listens_then_replacement_is_realized(cloud, network):
    group = make_group(cloud, cloud.images["probe"], list(network.values())[:2])
    try:
        first = group.one()
        ip, instance_id = first["PrivateIpAddress"], first["InstanceId"]
        assert ip.startswith(cloud.prefix + ".")
        assert wait_for(lambda: connect_answer(ip), 15, f"{instance_id} listening on {ip}") == instance_id
        record = cloud.pid_record(instance_id)
        assert record and alive(record)

        cloud.client("ec2").terminate_instances(InstanceIds=[instance_id])
        assert connect_answer(ip) is None, "TerminateInstances answers once the instance is down"
        assert not alive(record)
        wait_for(lambda: not cloud.instance_root(instance_id).exists(), 10, "terminated root removed")

        second = wait_for(lambda: [i for i in group.instances() if i["InstanceId"] != instance_id],
                          10, "ASG replacement")[0]
        assert second["PrivateIpAddress"] != ip
        assert wait_for(lambda: connect_answer(second["PrivateIpAddress"]), 15,
                        "replacement listening") == second["InstanceId"]
    finally:
        group.delete()


def test_instance_runs_unprivileged_with_only_a_vm_environment(cloud, network):
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1a"]])
    try:
        instance = group.one()
        report = wait_for(lambda: cloud.report(instance["InstanceId"]), 15, "probe report")
        assert report["env"] == ["AWS_EC2_METADATA_SERVICE_ENDPOINT", "LANG", "PATH"]
        if os.geteuid() == 0:
            assert report["uid"] != 0
            # its own PID namespace: like a VM it sees only its own processes
            assert report["pid"] == 1 and report["visible_processes"] < 5
        assert report["zone"] == "us-east-1a"
    finally:
        group.delete()


def test_other_images_run_nothing(cloud, network):
    ec2 = cloud.client("ec2")
    stock = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = run_instance(cloud, stock, network["us-east-1a"])
    try:
        # the realizer polls every 0.2 s: after a few polls it still has not realized anything
        assert not wait_for_absent(lambda: cloud.pid_record(instance["InstanceId"]), 1.0)
        assert connect_answer(instance["PrivateIpAddress"]) is None
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_stop_halts_and_start_boots_again(cloud, network):
    ec2 = cloud.client("ec2")
    instance = run_instance(cloud, cloud.images["probe"], network["us-east-1d"])
    iid, ip = instance["InstanceId"], instance["PrivateIpAddress"]
    try:
        wait_for(lambda: connect_answer(ip), 15, "listening")
        first = cloud.pid_record(iid)
        ec2.stop_instances(InstanceIds=[iid])
        assert connect_answer(ip) is None and not alive(first), "StopInstances answers once it is down"
        assert cloud.instance_root(iid).exists(), "a stopped instance keeps its root disk"
        ec2.start_instances(InstanceIds=[iid])          # immediately: the realizer may never see "stopped"
        assert wait_for(lambda: connect_answer(ip), 15, "booted again") == iid
        assert cloud.pid_record(iid)["pid"] != first["pid"]
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def test_restarted_realizer_adopts_running_instances(cloud, network):
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1b"]])
    try:
        instance = group.one()
        ip = instance["PrivateIpAddress"]
        wait_for(lambda: connect_answer(ip), 15, "listening")
        record = cloud.pid_record(instance["InstanceId"])
        realizer = next(d for d in cloud.status()["daemons"] if d["name"] == "realizer")
        os.kill(realizer["pid"], signal.SIGKILL)          # a crash, not a clean stop
        wait_for(lambda: not next(d for d in cloud.status()["daemons"] if d["name"] == "realizer")["running"],
                 5, "realizer gone")
        assert connect_answer(ip) == instance["InstanceId"], "instances outlive the realizer"

        cloud.cli("cloud", "up")                           # idempotent: restarts only the realizer
        assert cloud.pid_record(instance["InstanceId"]) == record, "adopted, not re-booted"
        report_before = cloud.report(instance["InstanceId"])
        # the adopted instance's metadata service is back: terminate → stopped by the new realizer path
        wait_for(lambda: _imds_up(cloud, instance["InstanceId"], ip), 10, "metadata service back")
        assert report_before and report_before["instance_id"] == instance["InstanceId"]
    finally:
        group.delete()
    wait_for(lambda: not alive(record), 15, "instance stopped after its group was deleted")


def _imds_up(cloud, instance_id: str, ip: str) -> bool:
    """The instance's own processes get a token again (without root we cannot be one of them:
    then the service is up when it refuses us)."""
    if os.geteuid() != 0:
        return _stranger_refused(ip)
    put = inside(cloud, {"InstanceId": instance_id})
    return put("PUT", f"http://{ip}:8775/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "10"})[0] == 200


def _stranger_refused(ip: str) -> bool:
    import urllib.error
    import urllib.request
    request = urllib.request.Request(f"http://{ip}:8775/latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "10"})
    try:
        with urllib.request.urlopen(request, timeout=1) as reply:
            raise AssertionError(f"the metadata service answered {reply.status} to a stranger")
    except urllib.error.HTTPError as exc:
        return exc.code == 403
