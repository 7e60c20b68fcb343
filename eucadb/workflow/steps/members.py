"""The members workflow's steps: replicas of the primary, each with its own slot, volume, template
and autoscaling group of one (docs/architecture.md §13).

The launch workflow builds member 0 (the primary, historical names); these steps add, update and
retire the replicas around it. Each step loops over the members and is idempotent, so a run killed
anywhere resumes by asking again.
"""
from __future__ import annotations

import time

from eucadb.errors import DatabaseError, WorkflowError
from eucadb.properties.registry import WORKER
from eucadb.retry import NotYet, Retry, RetryTimeout
from eucadb.store.replication import primary_record
from eucadb.workflow import replication_sql as rsql
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.engine import StepContext
from eucadb.workflow.members import MAX_MEMBERS, RETIRED_TAG, Member, member_of_slot, place, replica_indexes
from eucadb.workflow.service import launch_resources
from eucadb.workflow.steps.autoscaling import AutoScalingGroupStep
from eucadb.workflow.steps.base import BaseStep, tags_dict
from eucadb.workflow.steps.launch_template import LaunchTemplateStep, TemplateTarget
from eucadb.workflow.steps.replace import template_versions

STREAM_DEADLINE = 900.0   # a replica boots, runs pg_basebackup and starts streaming


def running_instance(step: BaseStep, ctx: StepContext, group_name: str) -> dict | None:
    """The group's running, in-service, healthy instance (None if it has none)."""
    group = step.group(ctx, group_name)
    ids = [i["InstanceId"] for i in (group or {}).get("Instances", [])
           if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"]
    if not ids:
        return None
    reservations = step.call(ctx, "ec2", "describe_instances", InstanceIds=ids)["Reservations"]
    return next((i for r in reservations for i in r["Instances"]
                 if i["State"]["Name"] == "running" and i.get("PrivateIpAddress")), None)


def delete_template(step: BaseStep, ctx: StepContext, name: str) -> None:
    """Delete a launch template if it exists (moto answers a missing one with MissingParameter)."""
    found = step.call(ctx, "ec2", "describe_launch_templates", Filters=[
        {"Name": "launch-template-name", "Values": [name]}])["LaunchTemplates"]
    if found:
        step.call_absent_ok(ctx, "ec2", "delete_launch_template", LaunchTemplateName=name)


def members(ctx: StepContext) -> list[Member]:
    return [Member(ctx.deployment, m["index"]) for m in ctx.resources["members"]]


def primary_endpoint(ctx: StepContext):
    return ctx.vault.db_endpoint(ctx.resources["primary_address"])


def admin(ctx: StepContext) -> dict:
    return ctx.vault.ensure_db_logins()[ADMIN]


class MemberPlanStep(BaseStep):
    """Who the replicas are and where they go, from the properties, the store and the cloud."""

    name = "member_plan"
    title = "plan the replica members"

    def apply(self, ctx: StepContext) -> dict:
        launched = launch_resources(ctx.app.store, ctx.deployment)
        if not launched:
            raise WorkflowError("no successful launch to add replicas to")
        ctx.resources.update(launched)
        record = primary_record(ctx.app.store, ctx.deployment)
        primary = Member(ctx.deployment, record.member)
        instance = running_instance(self, ctx, primary.group)
        if instance is None:
            raise NotYet(f"the primary {primary.name} has no running instance")
        wanted = replica_indexes(record.member, int(ctx.properties[WORKER + "replicas"]))
        zones = place(instance["Placement"]["AvailabilityZone"], launched["zones"], wanted)
        for index in wanted:   # a member whose volume exists stays in the volume's zone
            volume = MemberVolumesStep.find(self, ctx, Member(ctx.deployment, index))
            zones[index] = volume["AvailabilityZone"] if volume else zones[index]
        # the launch's resources are returned too: a resumed run replays them from this step's record
        return {**launched, "primary_member": record.member, "generation": record.generation,
                "primary_address": instance["PrivateIpAddress"],
                "members": [{"index": i, "zone": zones[i]} for i in wanted]}


class ReplicationSlotsStep(BaseStep):
    """A physical slot per replica on the primary, made before the replica is launched."""

    name = "replication_slots"
    title = "replication slots on the primary"

    def apply(self, ctx: StepContext) -> dict:
        with rsql.admin_session(primary_endpoint(ctx), admin(ctx)) as cur:
            made = [m.slot for m in members(ctx) if rsql.ensure_slot(cur, m.slot)]
        return {"slots_created": made}


class MemberVolumesStep(BaseStep):
    """A data volume per replica in its zone (never one a retired member left)."""

    name = "member_volumes"
    title = "replica data volumes"

    def find(self, ctx: StepContext, member: Member) -> dict | None:
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[
            *self.tag_filter(ctx), {"Name": "tag:Name", "Values": [member.volume]}])["Volumes"]
        live = [v for v in found if v["State"] not in ("deleting", "deleted", "error")
                and RETIRED_TAG not in tags_dict(v.get("Tags"))]
        return live[0] if live else None

    def apply(self, ctx: StepContext) -> dict:
        out = {}
        for entry in ctx.resources["members"]:
            member = Member(ctx.deployment, entry["index"])
            volume = self.find(ctx, member) or self.call(
                ctx, "ec2", "create_volume", AvailabilityZone=entry["zone"],
                Size=ctx.properties[WORKER + "volume_size"], VolumeType="gp2",
                TagSpecifications=[{"ResourceType": "volume", "Tags": member.tags(member.volume)}])
            out[str(member.index)] = volume["VolumeId"]
        return {"member_volumes": out}

    def rollback(self, ctx: StepContext) -> None:
        if not ctx.options.get("delete_volume"):
            return
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[
            *self.tag_filter(ctx), {"Name": "tag-key", "Values": ["eucadb:member"]}])["Volumes"]
        for volume in found:
            self.call_absent_ok(ctx, "ec2", "delete_volume", VolumeId=volume["VolumeId"])


class MemberTemplatesStep(BaseStep):
    """A launch template per replica: the primary's, with its own volume and the replica role."""

    name = "member_templates"
    title = "replica launch templates"

    @staticmethod
    def target(ctx: StepContext, member: Member) -> TemplateTarget:
        return TemplateTarget(member.group, ctx.resources["member_volumes"][str(member.index)],
                              {"role": "replica", "member": member.index, "slot": member.slot,
                               "primary_address": ctx.resources["primary_address"]},
                              member.tags(member.group))

    def apply(self, ctx: StepContext) -> dict:
        step, out = LaunchTemplateStep(), {}
        for member in members(ctx):
            target = self.target(ctx, member)
            made = step.adopt(ctx, target) or step.apply(ctx, target)
            out[str(member.index)] = {"id": made["launch_template_id"], "version": made["launch_template_version"]}
        return {"member_templates": out}

    def rollback(self, ctx: StepContext) -> None:
        for index in range(0, MAX_MEMBERS):   # member 0 too: after a failover it is a replica
            delete_template(self, ctx, Member(ctx.deployment, index).group)


class MemberGroupsStep(BaseStep):
    """An autoscaling group of one per replica, in its zone; an instance of an older template
    version is replaced (a replica carries no writes, so this interrupts nothing)."""

    name = "member_groups"
    title = "replica autoscaling groups"

    def apply(self, ctx: StepContext) -> dict:
        replaced = []
        for entry in ctx.resources["members"]:
            member = Member(ctx.deployment, entry["index"])
            template = ctx.resources["member_templates"][str(member.index)]
            spec = {"LaunchTemplate": {"LaunchTemplateId": template["id"], "Version": template["version"]},
                    "VPCZoneIdentifier": ctx.resources["subnets"][entry["zone"]],
                    "MinSize": 1, "MaxSize": 1, "DesiredCapacity": 1}
            group = self.group(ctx, member.group)
            if group is None:
                self.call(ctx, "autoscaling", "create_auto_scaling_group", AutoScalingGroupName=member.group,
                          HealthCheckType="EC2", HealthCheckGracePeriod=60, **spec,
                          Tags=[{"Key": k["Key"], "Value": k["Value"], "PropagateAtLaunch": True,
                                 "ResourceId": member.group, "ResourceType": "auto-scaling-group"}
                                for k in member.tags(member.group) if k["Key"] != "Name"])
                continue
            if group.get("LaunchTemplate", {}).get("Version") != template["version"]:
                self.call(ctx, "autoscaling", "update_auto_scaling_group",
                          AutoScalingGroupName=member.group, **spec)
            old = [iid for iid, v in template_versions(self, ctx, group).items()
                   if v not in (None, template["version"]) and not self._follows(ctx, member)]
            if old:
                self.call(ctx, "ec2", "terminate_instances", InstanceIds=old)
                replaced += old
        return {"member_groups": [m.group for m in members(ctx)], "replaced": replaced}

    def _follows(self, ctx: StepContext, member: Member) -> bool:
        """A running replica already re-pointed at the current primary (after a failover) needs
        no new instance: its next boot reads the group's new template version."""
        inst = running_instance(self, ctx, member.group)
        if inst is None:
            return False
        try:
            with rsql.admin_session(ctx.vault.db_endpoint(inst["PrivateIpAddress"]), admin(ctx)) as cur:
                cur.execute("SELECT pg_is_in_recovery(), current_setting('primary_conninfo')")
                recovery, conninfo = cur.fetchone()
        except DatabaseError:
            return False
        return bool(recovery) and f"hostaddr={ctx.resources['primary_address']} " in conninfo + " "

    def rollback(self, ctx: StepContext) -> None:
        groups = AutoScalingGroupStep()
        for index in range(0, MAX_MEMBERS):   # member 0 too: after a failover it is a replica
            name = Member(ctx.deployment, index).group
            if self.group(ctx, name) is not None:
                groups.delete_group(ctx, name)


class RetireMembersStep(BaseStep):
    """Members no longer wanted go: group and template deleted, slot dropped, volume kept and
    tagged retired (never adopted again: a returning member is seeded afresh)."""

    name = "retire_members"
    title = "retire members no longer wanted"

    def apply(self, ctx: StepContext) -> dict:
        keep = {ctx.resources["primary_member"], *(m.index for m in members(ctx))}
        retired = []
        for index in sorted(set(range(0, MAX_MEMBERS)) - keep):
            member = Member(ctx.deployment, index)
            if self.group(ctx, member.group) is not None:
                AutoScalingGroupStep().delete_group(ctx, member.group)
                retired.append(member.name)
            delete_template(self, ctx, member.group)
            volume = MemberVolumesStep.find(self, ctx, member)
            if volume is not None:
                self.call(ctx, "ec2", "create_tags", Resources=[volume["VolumeId"]], Tags=[
                    {"Key": RETIRED_TAG, "Value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    {"Key": "Name", "Value": f"{member.volume}-retired"}])
        with rsql.admin_session(primary_endpoint(ctx), admin(ctx)) as cur:
            dropped = [slot for slot in rsql.slots(cur)
                       if member_of_slot(slot) not in keep and rsql.drop_slot(cur, slot)]
        return {"retired": retired, "slots_dropped": dropped}


class WaitMembersStep(BaseStep):
    """Every replica streams through its slot; then the synchronous standby list follows them."""

    name = "wait_members"
    title = "wait for the replicas to stream"

    def apply(self, ctx: StepContext) -> dict:
        wanted = {m.slot for m in members(ctx)}
        for member in members(ctx):   # one that booted with an older primary in its user-data follows this one
            inst = running_instance(self, ctx, member.group)
            if inst is not None:
                try:
                    with rsql.admin_session(ctx.vault.db_endpoint(inst["PrivateIpAddress"]), admin(ctx)) as cur:
                        cur.execute("SELECT pg_is_in_recovery()")
                        if cur.fetchone()[0]:
                            rsql.repoint(cur, ctx.resources["primary_address"])
                except DatabaseError:
                    pass   # still booting or seeding: it reads the current primary from its user-data

        def streaming() -> list[str]:
            with rsql.admin_session(primary_endpoint(ctx), admin(ctx)) as cur:
                active = {slot for slot, on in rsql.slots(cur).items() if on}
            missing = sorted(wanted - active)
            if missing:
                raise NotYet(f"not streaming yet: {', '.join(missing)}")
            return sorted(wanted)
        try:
            done = Retry(deadline=STREAM_DEADLINE, max_delay=1, retry_on=(NotYet, DatabaseError)).call(
                streaming, "wait for the replicas to stream")
        except RetryTimeout as exc:
            raise WorkflowError(f"replicas not streaming after {STREAM_DEADLINE:.0f}s: {exc.last}") from None
        names = [m.name for m in members(ctx)]
        synchronous = ctx.properties[WORKER + "synchronous"] == "on"
        with rsql.admin_session(primary_endpoint(ctx), admin(ctx)) as cur:
            rsql.set_synchronous(cur, rsql.standby_names(names, synchronous))
        return {"streaming": done, "synchronous_standby_names": rsql.standby_names(names, synchronous)}
