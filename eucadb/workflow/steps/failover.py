"""The failover workflow's steps (docs/architecture.md §13): the cloud is the fence.

1. fence the old primary through the cloud API — its group held at zero, its instance terminated,
   and the step waits until the cloud says "terminated" (the embedded cloud stops the processes
   before answering); its volume is kept, tagged retired, never re-used as a primary;
2. choose the replica with the highest received WAL position, never one lagging more than
   max_lag_on_failover behind what the primary was last seen to hold;
3. promote it (pg_promote as the admin); 4. record it as the primary (a new generation, fenced by
   the lease); its template becomes a primary's; 5. re-point the other replicas (a slot on the new primary each, primary_conninfo +
   reload) and keep synchronous_standby_names in step. The loop then swaps the pools to it and
   enables the services; the members workflow rebuilds the lost member as a fresh replica.
Every step asks the cloud or the servers again, so a run killed anywhere resumes.
"""
from __future__ import annotations

import time
from dataclasses import replace

from eucadb.errors import DatabaseError, WorkflowError
from eucadb.properties.registry import WORKER
from eucadb.retry import NotYet, Retry, RetryTimeout
from eucadb.store.replication import clear_switchover, primary_record, record_primary
from eucadb.workflow import replication_sql as rsql
from eucadb.workflow.engine import StepContext
from eucadb.workflow.members import RETIRED_TAG, Member, member_of_slot
from eucadb.workflow.service import launch_resources
from eucadb.workflow.steps.base import BaseStep
from eucadb.workflow.steps.launch_template import LaunchTemplateStep, TemplateTarget
from eucadb.workflow.steps.replace import PROMOTED_TAG
from eucadb.workflow.steps.members import MemberVolumesStep, admin, running_instance

FENCE_DEADLINE = 300.0


def old_primary(ctx: StepContext) -> Member:
    return Member(ctx.deployment, int(ctx.options["from"]))


def replica_members(step: BaseStep, ctx: StepContext) -> dict[int, str]:
    """Running replicas (member index → IP), from the cloud: every member group but the old primary's."""
    out = {}
    for index in range(0, 6):
        if index == int(ctx.options["from"]):
            continue
        inst = running_instance(step, ctx, Member(ctx.deployment, index).group)
        if inst is not None:
            out[index] = inst["PrivateIpAddress"]
    return out


class QuiesceStep(BaseStep):
    """Switchover only: the old primary stops taking writes and the target catches up with every
    one it acknowledged, before the cloud fences it — so no acknowledged write is lost."""

    name = "quiesce_primary"
    title = "pause the writers and let the target catch up"

    def apply(self, ctx: StepContext) -> dict:
        old = running_instance(self, ctx, old_primary(ctx).group)
        if old is None:
            raise WorkflowError(f"the primary {old_primary(ctx).name} has no running instance: nothing to "
                                "switch over from (a failover handles a lost primary)")
        roles = ctx.vault.ensure_db_logins()
        writers = [roles[k]["user"] for k in ("cloudwatch", "reporting")]
        with rsql.admin_session(ctx.vault.db_endpoint(old["PrivateIpAddress"]), admin(ctx)) as cur:
            final = rsql.quiesce(cur, writers)
        targets = replica_members(self, ctx)
        if ctx.options.get("to") is not None:
            targets = {i: ip for i, ip in targets.items() if i == int(ctx.options["to"])}
        if not targets:
            raise WorkflowError(f"no running replica to switch over to ({ctx.options.get('to')})")

        def caught_up() -> None:
            behind = []
            for index, ip in targets.items():
                with rsql.admin_session(ctx.vault.db_endpoint(ip), admin(ctx)) as cur:
                    if rsql.position(cur)[1] < final:
                        behind.append(f"m{index}")
            if len(behind) == len(targets):
                raise NotYet(f"not caught up yet: {', '.join(behind)}")
        try:
            Retry(deadline=60, max_delay=0.2, retry_on=(NotYet, DatabaseError)).call(caught_up, "wait for the target")
        except RetryTimeout as exc:   # give the writes back to the primary that still has them
            with rsql.admin_session(ctx.vault.db_endpoint(old["PrivateIpAddress"]), admin(ctx)) as cur:
                cur.execute("ALTER SYSTEM SET default_transaction_read_only = off")
                cur.execute("SELECT pg_reload_conf()")
            raise WorkflowError(f"switchover abandoned, the primary takes writes again: {exc.last}") from None
        return {"final_lsn": final}


class FencePrimaryStep(BaseStep):
    name = "fence_primary"
    title = "fence the old primary through the cloud"

    def apply(self, ctx: StepContext) -> dict:
        old = old_primary(ctx)
        group = self.group(ctx, old.group)
        ids = [i["InstanceId"] for i in (group or {}).get("Instances", [])]
        if group is not None:   # first hold the group at zero: it must not boot the old primary again
            self.call(ctx, "autoscaling", "update_auto_scaling_group", AutoScalingGroupName=old.group,
                      MinSize=0, MaxSize=0, DesiredCapacity=0)
        ids += ctx.options.get("instances") or []
        if ids:
            self.call_absent_ok(ctx, "ec2", "terminate_instances", InstanceIds=sorted(set(ids)))
        Retry(deadline=FENCE_DEADLINE, max_delay=0.5, retry_on=(NotYet,)).call(
            lambda: self._terminated(ctx, sorted(set(ids))), "wait for the cloud to confirm the fence")
        volume = MemberVolumesStep.find(self, ctx, old)
        if volume is not None:
            generation = primary_record(ctx.app.store, ctx.deployment).generation
            self.call(ctx, "ec2", "create_tags", Resources=[volume["VolumeId"]], Tags=[
                {"Key": RETIRED_TAG, "Value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                {"Key": "Name", "Value": f"{old.volume}-primary-g{generation}"}])
        return {"fenced": sorted(set(ids)), "kept_volume": volume["VolumeId"] if volume else None}

    def _terminated(self, ctx: StepContext, ids: list[str]) -> None:
        if not ids:
            return
        found = self.call_absent_ok(ctx, "ec2", "describe_instances", InstanceIds=ids)
        alive = [i["InstanceId"] for r in (found or {}).get("Reservations", []) for i in r["Instances"]
                 if i["State"]["Name"] != "terminated"]
        if alive:
            raise NotYet(f"{', '.join(alive)} not terminated yet")


class ChooseCandidateStep(BaseStep):
    name = "choose_candidate"
    title = "choose the most advanced replica"

    def apply(self, ctx: StepContext) -> dict:
        positions: dict[int, tuple[bool, int, str]] = {}
        errors = []
        for index, ip in replica_members(self, ctx).items():
            try:
                with rsql.admin_session(ctx.vault.db_endpoint(ip), admin(ctx)) as cur:
                    recovery, at = rsql.position(cur)
                positions[index] = (recovery, at, ip)
            except DatabaseError as exc:
                errors.append(f"m{index}: {exc}")
        promoted = [i for i, (recovery, _, _) in positions.items() if not recovery]
        if promoted:   # a resumed run: the promotion already happened
            index = promoted[0]
        else:
            if ctx.options.get("to") is not None:   # switchover to a chosen member
                positions = {i: p for i, p in positions.items() if i == int(ctx.options["to"])}
            if not positions:
                raise WorkflowError("no replica answers: " + ("; ".join(errors) or "none running"))
            index = max(positions, key=lambda i: (positions[i][1], -i))
            last = int(ctx.resources.get("final_lsn") or ctx.options.get("last_primary_lsn") or 0)
            # a switchover promotes only a replica that has every write the old primary acknowledged
            limit = 0 if "final_lsn" in ctx.resources else int(ctx.properties[WORKER + "max_lag_on_failover"])
            if last and last - positions[index][1] > limit:
                raise WorkflowError(f"the most advanced replica m{index} lags {last - positions[index][1]} "
                                    f"bytes, over max_lag_on_failover ({limit}); not promoting")
        return {"candidate": index, "candidate_address": positions[index][2],
                "positions": {f"m{i}": p[1] for i, p in positions.items()}}


class PromoteStep(BaseStep):
    name = "promote"
    title = "promote the chosen replica"

    def apply(self, ctx: StepContext) -> dict:
        with rsql.admin_session(ctx.vault.db_endpoint(ctx.resources["candidate_address"]), admin(ctx)) as cur:
            promoted = rsql.promote(cur)
        return {"promoted": promoted}


class RecordPrimaryStep(BaseStep):
    name = "record_primary"
    title = "record the new primary"

    def apply(self, ctx: StepContext) -> dict:
        record = record_primary(ctx.app.store, ctx.deployment, ctx.resources["candidate"],
                                f"{ctx.options.get('kind', 'failover')} from m{ctx.options['from']}: "
                                f"{ctx.options.get('why', '')}", ctx.fence)
        clear_switchover(ctx.app.store, ctx.deployment, ctx.fence)
        return {"primary_member": record.member, "generation": record.generation}


class PrimaryTemplateStep(BaseStep):
    """The new primary's template becomes a primary's (its own volume, no replication role), its
    group points at it and the instance is tagged as running it: its next boot is a primary's, and
    a later launch with unchanged inputs adopts this version instead of replacing the instance."""

    name = "primary_template"
    title = "the new primary's launch template"

    def apply(self, ctx: StepContext) -> dict:
        member = Member(ctx.deployment, ctx.resources["candidate"])
        volume = MemberVolumesStep.find(self, ctx, member)
        if volume is None:
            raise WorkflowError(f"the new primary {member.name} has no volume named {member.volume}")
        launched = replace(ctx, resources={**launch_resources(ctx.app.store, ctx.deployment), **ctx.resources})
        target = TemplateTarget(member.group, volume["VolumeId"], None, member.primary_tags(member.group))
        step = LaunchTemplateStep()
        made = step.adopt(launched, target) or step.apply(launched, target)
        version = made["launch_template_version"]
        self.call(ctx, "autoscaling", "update_auto_scaling_group", AutoScalingGroupName=member.group,
                  LaunchTemplate={"LaunchTemplateId": made["launch_template_id"], "Version": version})
        inst = running_instance(self, ctx, member.group)
        if inst is not None:
            self.call(ctx, "ec2", "create_tags", Resources=[inst["InstanceId"]],
                      Tags=[{"Key": PROMOTED_TAG, "Value": version}])
        return {"primary_template_version": version}


class RepointReplicasStep(BaseStep):
    name = "repoint_replicas"
    title = "re-point the other replicas"

    def apply(self, ctx: StepContext) -> dict:
        new = ctx.resources["candidate"]
        others = {i: ip for i, ip in replica_members(self, ctx).items() if i != new}
        endpoint = ctx.vault.db_endpoint(ctx.resources["candidate_address"])
        with rsql.admin_session(endpoint, admin(ctx)) as cur:
            for index in others:
                rsql.ensure_slot(cur, Member(ctx.deployment, index).slot)
            for slot in rsql.slots(cur):   # its own slot, copied by its seed: no member streams through it
                if member_of_slot(slot) == new:
                    rsql.drop_slot(cur, slot)
        repointed = []
        for index, ip in others.items():
            with rsql.admin_session(ctx.vault.db_endpoint(ip), admin(ctx)) as cur:
                if rsql.repoint(cur, ctx.resources["candidate_address"]):
                    repointed.append(f"m{index}")
        synchronous = ctx.properties[WORKER + "synchronous"] == "on"
        names = rsql.standby_names([f"m{i}" for i in others], synchronous)
        with rsql.admin_session(endpoint, admin(ctx)) as cur:
            rsql.set_synchronous(cur, names)
        return {"repointed": repointed, "synchronous_standby_names": names}
