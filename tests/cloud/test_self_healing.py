"""Self-healing in the embedded Auto Scaling, as in AWS: an instance marked Unhealthy through
SetInstanceHealth is terminated and replaced, and the replacement's boot program takes the data volume
over; a group member that is stopped is replaced once its grace period is over; an instance outside any
group stays stopped. Real moto server, real realizer, the probe boot program."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from helpers import make_group, run_instance
from localcloud import alive, connect_answer, wait_for, wait_for_absent

pytestmark = pytest.mark.slow


def _state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _health(asg, instance_id: str) -> str:
    return asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"][0]["HealthStatus"]


def _replacement(group, old: str) -> dict | None:
    return next((i for i in group.instances() if i["InstanceId"] != old), None)


def _code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_unhealthy_instance_is_terminated_and_replaced_and_its_volume_follows(cloud, network):
    ec2, asg = cloud.client("ec2"), cloud.client("autoscaling")
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1c")["VolumeId"]
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1c"]], user_data={"volume": volume},
                       grace=600)
    try:
        first = group.one()["InstanceId"]
        wait_for(lambda: f"written-by-{first}" in cloud.disk(first), 15, "first instance writes its volume")
        record = cloud.pid_record(first)

        asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy")  # respects its 600 s grace
        assert _health(asg, first) == "Healthy" and _state(ec2, first) == "running" and alive(record)

        started = time.monotonic()
        asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
        answered = time.monotonic() - started
        assert _state(ec2, first) == "terminated" and not alive(record), \
            "SetInstanceHealth answers once the unhealthy instance is terminated and down"
        attachments = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
        assert first not in {a["InstanceId"] for a in attachments}, "the terminated instance's volume is freed"

        second = wait_for(lambda: _replacement(group, first), 10, "the group's replacement")
        second_id = second["InstanceId"]
        assert wait_for(lambda: connect_answer(second["PrivateIpAddress"]), 15,
                        "replacement realized and listening") == second_id
        listening = time.monotonic() - started
        disk = wait_for(lambda: f"written-by-{second_id}" in cloud.disk(second_id) and cloud.disk(second_id),
                        15, "the replacement's boot program attaches the volume")
        print(f"\nSetInstanceHealth answered in {answered:.2f}s; replacement listening after {listening:.2f}s, "
              f"writing its volume after {time.monotonic() - started:.2f}s")
        assert f"written-by-{first}" in disk, "the first instance's data is on the volume"

        described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group.name])["AutoScalingGroups"][0]
        assert described["DesiredCapacity"] == 1 and [i["InstanceId"] for i in described["Instances"]] == [second_id]
        wait_for(lambda: not cloud.instance_root(first).exists(), 10, "terminated root removed")
        assert _code(lambda: asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy")) == \
            "ValidationError", "a terminated instance is no group's any more"
    finally:
        group.delete()
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available", 15,
             "volume freed by the group's deletion")
    ec2.delete_volume(VolumeId=volume)


def test_stopped_member_is_replaced_once_its_grace_period_is_over(cloud, network):
    ec2, asg = cloud.client("ec2"), cloud.client("autoscaling")
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1d"]], grace=600)
    try:
        first = group.one()
        wait_for(lambda: connect_answer(first["PrivateIpAddress"]), 15, "first instance listening")
        ec2.stop_instances(InstanceIds=[first["InstanceId"]])
        # the realizer polls every 0.2 s: inside the grace period the stopped member stays the group's
        assert wait_for_absent(lambda: _replacement(group, first["InstanceId"]), 1.5) is None
        assert _state(ec2, first["InstanceId"]) == "stopped"

        asg.update_auto_scaling_group(AutoScalingGroupName=group.name, HealthCheckGracePeriod=0)
        second = wait_for(lambda: _replacement(group, first["InstanceId"]), 10, "replacement of the stopped member")
        assert _state(ec2, first["InstanceId"]) == "terminated"
        assert wait_for(lambda: connect_answer(second["PrivateIpAddress"]), 15,
                        "replacement listening") == second["InstanceId"]
    finally:
        group.delete()


def test_stopped_instance_outside_any_group_stays_stopped(cloud, network):
    ec2 = cloud.client("ec2")
    instance = run_instance(cloud, cloud.images["probe"], network["us-east-1a"])
    try:
        wait_for(lambda: connect_answer(instance["PrivateIpAddress"]), 15, "listening")
        ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
        assert wait_for_absent(lambda: _state(ec2, instance["InstanceId"]) != "stopped", 1.5) is None
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_set_instance_health_refuses_what_aws_refuses(cloud):
    asg = cloud.client("autoscaling")
    assert _code(lambda: asg.set_instance_health(InstanceId="i-0123456789abcdef0", HealthStatus="Sick")) == \
        "ValidationError"
    assert _code(lambda: asg.set_instance_health(InstanceId="i-0123456789abcdef0", HealthStatus="Unhealthy")) == \
        "ValidationError"
