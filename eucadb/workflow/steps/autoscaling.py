"""Step 8: the autoscaling group — exactly one instance, replaced by the cloud when it dies.

The data volume pins the zone (an EBS volume attaches only in its own zone), so the group's subnets
are those of the volume's zone.
"""
from __future__ import annotations

from eucadb.cloud.client import PROPAGATION
from eucadb.retry import NotYet, Retry
from eucadb.workflow.deployment import TAG
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep


GROUP_DELETE_DEADLINE = 600.0


class AutoScalingGroupStep(BaseStep):
    name = "autoscaling_group"
    title = "autoscaling group"

    def _template(self, ctx: StepContext) -> dict:
        return {"LaunchTemplateId": ctx.resources["launch_template_id"],
                "Version": ctx.resources["launch_template_version"]}

    def adopt(self, ctx: StepContext) -> dict | None:
        group = self.group(ctx)
        if group and group.get("LaunchTemplate", {}).get("Version") == ctx.resources["launch_template_version"]:
            return {"autoscaling_group": group["AutoScalingGroupName"]}
        return None

    def apply(self, ctx: StepContext) -> dict:
        name = self.primary(ctx).group
        subnet = ctx.resources["subnets"][ctx.resources["volume_zone"]]
        # AWS checks the template (and the instance profile in it) here, and answers "not a valid
        # fully-formed launch template" until both, made moments ago, have propagated
        if self.group(ctx) is None:
            PROPAGATION.call(lambda: self.call(
                ctx, "autoscaling", "create_auto_scaling_group", AutoScalingGroupName=name,
                LaunchTemplate=self._template(ctx), MinSize=1, MaxSize=1, DesiredCapacity=1,
                VPCZoneIdentifier=subnet, HealthCheckType="EC2", HealthCheckGracePeriod=60,
                Tags=[{"Key": TAG, "Value": ctx.deployment, "PropagateAtLaunch": True,
                       "ResourceId": name, "ResourceType": "auto-scaling-group"}]), f"create group {name}")
        else:
            PROPAGATION.call(lambda: self.call(
                ctx, "autoscaling", "update_auto_scaling_group", AutoScalingGroupName=name,
                LaunchTemplate=self._template(ctx), VPCZoneIdentifier=subnet,
                MinSize=1, MaxSize=1, DesiredCapacity=1), f"update group {name}")
        return {"autoscaling_group": name}

    def rollback(self, ctx: StepContext) -> None:
        self.delete_group(ctx, self.primary(ctx).group)

    def delete_group(self, ctx: StepContext, name: str) -> None:
        """Force-delete a group and terminate its instances; returns once the cloud confirms both."""
        group = self.group(ctx, name)
        if group is None:
            return
        instance_ids = [i["InstanceId"] for i in group.get("Instances", [])]
        self.call_absent_ok(ctx, "autoscaling", "delete_auto_scaling_group",
                            AutoScalingGroupName=group["AutoScalingGroupName"], ForceDelete=True)
        if instance_ids:
            self.call_absent_ok(ctx, "ec2", "terminate_instances", InstanceIds=instance_ids)
        # a force delete on AWS takes minutes (instances terminate, then "Delete in progress")
        Retry(deadline=GROUP_DELETE_DEADLINE, max_delay=10, retry_on=(NotYet,)).call(
            lambda: self._gone(ctx, name, instance_ids), "wait for the group's instances to terminate")

    def _gone(self, ctx: StepContext, name: str, instance_ids: list[str]) -> None:
        if self.group(ctx, name) is not None:
            raise NotYet("group still exists")
        if not instance_ids:
            return
        described = self.call_absent_ok(ctx, "ec2", "describe_instances", InstanceIds=instance_ids)
        reservations = described["Reservations"] if described else []  # absent: terminated and purged
        alive = [i["InstanceId"] for r in reservations for i in r["Instances"]
                 if i["State"]["Name"] != "terminated"]
        if alive:
            raise NotYet(f"instances {', '.join(alive)} not terminated yet")
