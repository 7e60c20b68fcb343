"""The embedded Auto Scaling's EC2 health check rule: which group members are marked Unhealthy."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eucadb.cloud.local.asg_health import in_grace, to_mark_unhealthy

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def _cloud(state: str, age: float, grace: int | None = 60, lifecycle: str = "InService",
           health: str = "Healthy") -> tuple[list[dict], dict[str, dict]]:
    """One group of one member `i-1`, launched `age` seconds before NOW, in EC2 state `state`."""
    group = {"AutoScalingGroupName": "g", "Instances": [
        {"InstanceId": "i-1", "LifecycleState": lifecycle, "HealthStatus": health}]}
    if grace is not None:
        group["HealthCheckGracePeriod"] = grace
    instance = {"InstanceId": "i-1", "State": {"Name": state}, "LaunchTime": NOW - timedelta(seconds=age)}
    return [group], {"i-1": instance}


@pytest.mark.parametrize("state, age, grace, marked", [
    ("stopped", 61, 60, True),
    ("stopped", 60, 60, True),             # the grace period is over at launch + grace
    ("stopped", 59, 60, False),            # still in its grace period
    ("stopped", 0, 0, True),
    ("stopped", 0, None, True),            # no grace period given: none applies
    ("stopping", 120, 60, True),
    ("shutting-down", 120, 60, True),
    ("terminated", 120, 60, True),
    ("running", 120, 60, False),
    ("pending", 120, 60, False),
])
def test_only_members_not_running_past_their_grace_period_are_marked(state, age, grace, marked):
    groups, instances = _cloud(state, age, grace)
    assert to_mark_unhealthy(groups, instances, NOW) == (["i-1"] if marked else [])


@pytest.mark.parametrize("lifecycle, health", [("Terminating", "Healthy"), ("Pending", "Healthy"),
                                               ("InService", "Unhealthy")])
def test_members_already_leaving_or_already_unhealthy_are_not_marked_again(lifecycle, health):
    groups, instances = _cloud("stopped", 120, lifecycle=lifecycle, health=health)
    assert to_mark_unhealthy(groups, instances, NOW) == []


def test_instances_outside_groups_and_members_ec2_does_not_describe_are_left_alone():
    groups, instances = _cloud("stopped", 120)
    loner = {"InstanceId": "i-2", "State": {"Name": "stopped"}, "LaunchTime": NOW - timedelta(hours=1)}
    assert to_mark_unhealthy(groups, {"i-2": loner}, NOW) == []
    assert to_mark_unhealthy(groups, {**instances, "i-2": loner}, NOW) == ["i-1"]


def test_every_group_is_checked():
    first, instances = _cloud("stopped", 120)
    second = [{"AutoScalingGroupName": "h", "HealthCheckGracePeriod": 0, "Instances": [
        {"InstanceId": "i-3", "LifecycleState": "InService", "HealthStatus": "Healthy"}]}]
    instances["i-3"] = {"InstanceId": "i-3", "State": {"Name": "stopped"}, "LaunchTime": NOW}
    assert to_mark_unhealthy(first + second, instances, NOW) == ["i-1", "i-3"]


def test_in_grace_counts_from_launch():
    assert in_grace(NOW, 60, NOW + timedelta(seconds=59))
    assert not in_grace(NOW, 60, NOW + timedelta(seconds=60))
    assert not in_grace(NOW, 0, NOW)
