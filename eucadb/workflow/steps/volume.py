"""Step 6: the data volume — the operator's (property `volume`) or one eucadb creates and tags.

A volume holds the database: rollback deletes only a volume this deployment created and that never
held data (a launch that failed before any instance booted); teardown keeps it (and the volumes restores and failovers retired) unless asked.
"""
from __future__ import annotations

from eucadb.errors import WorkflowError
from eucadb.properties.registry import WORKER
from eucadb.retry import NotYet, Retry
from eucadb.workflow.engine import StepContext
from eucadb.workflow.deployment import TAG, Names
from eucadb.workflow.steps.base import BaseStep, tags_dict

# A volume a restore made carries what to restore into it (workflow/steps/restore.py): the
# launch template hands that to the instance for as long as the volume is the deployment's, so
# re-launching on it changes nothing (the instance ignores the block once the disk holds a cluster).
RESTORE_TOKEN, RESTORED_FROM, RESTORE_TARGET = "eucadb:restore", "eucadb:restored-from", "eucadb:restore-target"
# Volumes kept with the deployment's data after a restore or a failover replaced them: listed by
# `backup volumes`, deleted only by a teardown that deletes the data (`--delete-volume`).
KEPT_TAGS = frozenset({"eucadb:retired", "eucadb:failed-restore"})


def restore_resources(volume: dict) -> dict:
    """{"volume_restore": {...}} for a volume a restore made, else {}."""
    tags = tags_dict(volume.get("Tags"))
    if RESTORE_TOKEN not in tags:
        return {}
    target = tags.get(RESTORE_TARGET) or None
    return {"volume_restore": {"token": tags[RESTORE_TOKEN], "backup_id": tags[RESTORED_FROM],
                               "target_time": None if target == "immediate" else target}}


class VolumeStep(BaseStep):
    name = "volume"
    title = "data volume"

    def _tagged(self, ctx: StepContext) -> dict | None:
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[
            *self.tag_filter(ctx), {"Name": "tag:Name", "Values": [self.primary(ctx).volume]}])["Volumes"]
        live = [v for v in found if v["State"] not in ("deleting", "deleted", "error")]
        return live[0] if live else None

    def adopt(self, ctx: StepContext) -> dict | None:
        chosen = ctx.properties[WORKER + "volume"]
        volume = (ctx.app.facts.volume(chosen) if chosen else self._tagged(ctx))
        if volume is None:
            return None
        owner = tags_dict(volume.get("Tags")).get(TAG)
        if chosen and owner != ctx.deployment:
            # the instance role may attach only volumes tagged with this deployment: take over a
            # volume a torn-down deployment kept, never one another deployment's instance holds
            if volume["State"] != "available":
                raise WorkflowError(f"{WORKER}volume {chosen} is {volume['State']}"
                                    + (f" and belongs to deployment {owner}" if owner else "")
                                    + "; choose a volume that is available")
            if owner and self.group(ctx, Names(owner).db):  # between two instances of a roll: still its
                raise WorkflowError(f"{WORKER}volume {chosen} belongs to deployment {owner}, which still "
                                    f"runs (autoscaling group {Names(owner).db}); tear it down first")
            self.call(ctx, "ec2", "create_tags", Resources=[chosen], Tags=self.names(ctx).tags())
        self._wait_usable(ctx, volume["VolumeId"])
        return {"volume_id": volume["VolumeId"], "volume_zone": volume["AvailabilityZone"],
                "volume_created": False, **restore_resources(volume)}

    def apply(self, ctx: StepContext) -> dict:
        zone = ctx.resources["volume_zone"]
        volume = self.call(ctx, "ec2", "create_volume", AvailabilityZone=zone,
                           Size=ctx.properties[WORKER + "volume_size"], VolumeType="gp2",
                           TagSpecifications=[{"ResourceType": "volume",
                                               "Tags": self.primary(ctx).primary_tags(
                                                   self.primary(ctx).volume)}])
        self._wait_usable(ctx, volume["VolumeId"])
        return {"volume_id": volume["VolumeId"], "volume_zone": zone, "volume_created": True}

    def _wait_usable(self, ctx: StepContext, volume_id: str) -> None:
        def state() -> None:
            found = self.call_absent_ok(ctx, "ec2", "describe_volumes", VolumeIds=[volume_id])
            if found is None:  # right after CreateVolume, EC2 may not know the id yet
                raise NotYet(f"volume {volume_id} is not visible yet")
            vol = found["Volumes"][0]
            if vol["State"] == "creating":
                raise NotYet(f"volume {volume_id} is still creating")
            if vol["State"] not in ("available", "in-use"):
                raise WorkflowError(f"volume {volume_id} is {vol['State']}")
        Retry(deadline=120, retry_on=(NotYet,)).call(state, f"wait for volume {volume_id}")

    def rollback(self, ctx: StepContext) -> None:
        delete = ctx.options.get("delete_volume") or (
            ctx.rolling_back and ctx.resources.get("volume_created"))
        if not delete:
            return
        volume = self._tagged(ctx)
        if volume is not None:
            self._delete(ctx, volume)
        if ctx.options.get("delete_volume"):
            # "delete the data" means all of it: the volumes restores and failovers kept to go
            # back to hold the deployment's data too (a replica's are the members step's)
            for kept in self._kept(ctx):
                self._delete(ctx, kept)

    def _kept(self, ctx: StepContext) -> list[dict]:
        """This deployment's volumes a restore or a failover retired (or a failed restore left)."""
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[*self.tag_filter(ctx)])["Volumes"]
        return [v for v in found if v["State"] not in ("deleting", "deleted", "error")
                and KEPT_TAGS & set(tags_dict(v.get("Tags")))]

    def _delete(self, ctx: StepContext, volume: dict) -> None:
        for attachment in volume.get("Attachments", []):
            self.call_absent_ok(ctx, "ec2", "detach_volume", VolumeId=volume["VolumeId"],
                                InstanceId=attachment["InstanceId"], Force=True)
        # VolumeInUse while the detach completes is transient: the engine retries.
        self.call_absent_ok(ctx, "ec2", "delete_volume", VolumeId=volume["VolumeId"])
