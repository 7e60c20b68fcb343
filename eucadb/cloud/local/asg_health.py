"""Auto Scaling's health rules, which moto 5.2 records but never acts on.

AWS's EC2 health check counts an InService instance unhealthy when its EC2 state is anything but
running, once the group's HealthCheckGracePeriod has passed since the instance launched; the group then
terminates it and launches a replacement. The embedded cloud applies the same rule (the realizer
marks such instances through SetInstanceHealth, the gateway replaces what is marked); an instance
outside any group is nobody's to replace and stays as it is.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Mapping

HEALTH_STATUSES = ("Healthy", "Unhealthy")
NOT_IMPAIRED = frozenset({"pending", "running"})  # every other EC2 state fails the EC2 health check


def in_grace(launched: datetime, grace_seconds: int | None, now: datetime) -> bool:
    """Whether an instance launched at `launched` is still inside its group's grace period."""
    return now < launched + timedelta(seconds=grace_seconds or 0)


def to_mark_unhealthy(groups: Iterable[Mapping], instances: Mapping[str, Mapping],
                      now: datetime) -> list[str]:
    """Instances the groups' EC2 health check fails now.

    `groups` are DescribeAutoScalingGroups entries, `instances` DescribeInstances entries by id. Only
    InService members still marked Healthy count (a Terminating one is being replaced already); a member
    EC2 does not describe is left alone rather than guessed about."""
    marked = []
    for group in groups:
        for member in group.get("Instances", []):
            instance = instances.get(member["InstanceId"])
            if (instance is None or member.get("LifecycleState") != "InService"
                    or member.get("HealthStatus") != "Healthy"
                    or instance["State"]["Name"] in NOT_IMPAIRED
                    or in_grace(instance["LaunchTime"], group.get("HealthCheckGracePeriod"), now)):
                continue
            marked.append(member["InstanceId"])
    return marked
