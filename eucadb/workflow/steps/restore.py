"""The restore workflow's own steps: a new data volume to restore into, and the wait for the restore.

Never destructive: the deployment's volume is only re-tagged (`eucadb:retired=<time>`,
`eucadb:replaced-by=<new volume>`) and kept, and a failed restore puts the tags back, so the next
launch runs the old database again. The instance does the restore itself at boot (the launch
template hands it the new volume's restore tags as user-data's `restore` block).
"""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

import psycopg2

from eucadb.errors import WorkflowError
from eucadb.properties.registry import WORKER
from eucadb.retry import NotYet, Retry, RetryTimeout
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.engine import Step, StepContext
from eucadb.workflow.steps.base import BaseStep, tags_dict
from eucadb.workflow.steps.volume import (RESTORE_TARGET, RESTORE_TOKEN, RESTORED_FROM, VolumeStep,
                                          restore_resources)
from eucadb.workflow.steps.wait import DB_DEADLINE

RETIRED, REPLACED_BY, FAILED_RESTORE = "eucadb:retired", "eucadb:replaced-by", "eucadb:failed-restore"


@dataclass(frozen=True)
class Kept:
    """A launch step inside a restore: it runs as in a launch, but a failed restore never undoes it
    (that would tear the deployment down); only the restore's own steps roll back."""

    step: Step

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def title(self) -> str:
        return self.step.title

    def adopt(self, ctx: StepContext) -> dict | None:
        return self.step.adopt(ctx)

    def apply(self, ctx: StepContext) -> dict:
        return self.step.apply(ctx)

    def rollback(self, ctx: StepContext) -> None:
        return None


def request(ctx: StepContext) -> dict:
    """The restore this run makes: {"token", "backup_id", "target_time"} (the CLI's request)."""
    return ctx.options["restore"]


class RestoreVolumeStep(VolumeStep):
    name = "restore_volume"
    title = "new data volume for the restore (the old one kept)"

    def _made(self, ctx: StepContext) -> dict | None:
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[
            *self.tag_filter(ctx), {"Name": f"tag:{RESTORE_TOKEN}", "Values": [request(ctx)["token"]]}])
        live = [v for v in found["Volumes"] if v["State"] not in ("deleting", "deleted", "error")]
        return live[0] if live else None

    def _retired(self, ctx: StepContext, new_id: str) -> dict | None:
        found = self.call(ctx, "ec2", "describe_volumes", Filters=[
            *self.tag_filter(ctx), {"Name": f"tag:{REPLACED_BY}", "Values": [new_id]}])["Volumes"]
        return found[0] if found else None

    def _resources(self, ctx: StepContext, new: dict) -> dict:
        retired = self._retired(ctx, new["VolumeId"])
        return {"volume_id": new["VolumeId"], "volume_zone": new["AvailabilityZone"],
                "volume_created": True, **restore_resources(new),
                "retired_volume": retired["VolumeId"] if retired else None}

    def adopt(self, ctx: StepContext) -> dict | None:
        new = self._made(ctx)
        if new is None or tags_dict(new.get("Tags")).get("Name") != self.names(ctx).volume:
            return None
        return self._resources(ctx, new)

    def apply(self, ctx: StepContext) -> dict:
        if ctx.properties[WORKER + "volume"]:
            raise WorkflowError(f"{WORKER}volume is set: a restore needs a volume eucadb manages")
        want, names = request(ctx), self.names(ctx)
        old, new = self._tagged(ctx), self._made(ctx)
        if new is None:
            zone = old["AvailabilityZone"] if old else ctx.resources["volume_zone"]
            size = max(int(ctx.properties[WORKER + "volume_size"]), int(old["Size"]) if old else 0)
            tags = [*names.tags(), {"Key": RESTORE_TOKEN, "Value": want["token"]},
                    {"Key": RESTORED_FROM, "Value": want["backup_id"]},
                    {"Key": RESTORE_TARGET, "Value": want.get("target_time") or "immediate"}]
            new = self.call(ctx, "ec2", "create_volume", AvailabilityZone=zone, Size=size,
                            VolumeType="gp2", TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
        self._wait_usable(ctx, new["VolumeId"])
        if old is not None and old["VolumeId"] != new["VolumeId"]:
            now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.call(ctx, "ec2", "create_tags", Resources=[old["VolumeId"]], Tags=[
                {"Key": "Name", "Value": f"{names.volume}-retired"}, {"Key": RETIRED, "Value": now},
                {"Key": REPLACED_BY, "Value": new["VolumeId"]}])
        self.call(ctx, "ec2", "create_tags", Resources=[new["VolumeId"]],
                  Tags=[{"Key": "Name", "Value": names.volume}])
        return self._resources(ctx, self._made(ctx))

    def rollback(self, ctx: StepContext) -> None:
        """Give the deployment its old volume back; the new one is kept, tagged as a failed restore."""
        new = self._made(ctx)
        if new is None:
            return
        names = self.names(ctx)
        self.call(ctx, "ec2", "create_tags", Resources=[new["VolumeId"]], Tags=[
            {"Key": "Name", "Value": f"{names.volume}-failed-restore"},
            {"Key": FAILED_RESTORE, "Value": request(ctx)["token"]}])
        retired = self._retired(ctx, new["VolumeId"])
        if retired is not None:
            self.call(ctx, "ec2", "delete_tags", Resources=[retired["VolumeId"]],
                      Tags=[{"Key": RETIRED}, {"Key": REPLACED_BY}])
            self.call(ctx, "ec2", "create_tags", Resources=[retired["VolumeId"]],
                      Tags=[{"Key": "Name", "Value": names.volume}])


class WaitRestoredStep(BaseStep):
    name = "wait_restored"
    title = "wait until recovery reached the target and the database accepts writes"

    def apply(self, ctx: StepContext) -> dict:
        endpoint = ctx.vault.db_endpoint(ctx.resources["private_ip"])
        admin = ctx.vault.ensure_db_logins()[ADMIN]
        token = request(ctx)["token"]
        args = endpoint.connect_args(admin["user"], admin["password"], "postgres", connect_timeout=5)

        def restored() -> dict:
            try:
                with contextlib.closing(psycopg2.connect(**args)) as conn, conn.cursor() as cur:
                    cur.execute("SELECT current_setting('eucadb.restore', true), pg_is_in_recovery()")
                    found, recovering = cur.fetchone()
                    if found != token or recovering:
                        raise NotYet(f"the database reports restore {found!r}"
                                     + (" and is still recovering" if recovering else ""))
                    cur.execute("SELECT txid_current()")    # a write: fails on a read-only server
                    conn.commit()
            except psycopg2.Error as exc:
                raise NotYet(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
            return {"restored": token}
        try:
            return Retry(deadline=DB_DEADLINE, max_delay=1, retry_on=(NotYet,)).call(
                restored, "wait for the restored database")
        except RetryTimeout as exc:
            raise WorkflowError(f"restore {token} not done after {DB_DEADLINE:.0f}s: {exc.last}") from None
