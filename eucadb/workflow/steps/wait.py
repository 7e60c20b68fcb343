"""Steps 10 and 11: wait for the instance to run, then for its database to accept TLS verify-full.

Neither creates anything; both poll with their own deadline (booting takes longer than one API call's
retry budget) and fail the launch — which rolls it back — when the deadline passes.
"""
from __future__ import annotations


from eucadb.errors import DatabaseError, WorkflowError
from eucadb.pool.endpoint import probe
from eucadb.retry import NotYet, Retry, RetryTimeout
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep
from eucadb.workflow.steps.replace import template_versions

INSTANCE_DEADLINE = 300.0
# longer than the boot program's own waits together (key 180 s, volume 300 s, disk 60 s, its
# temporary server) plus an OS boot, so a slow first boot is not rolled back while it is working
DB_DEADLINE = 900.0
MIN_SERVER_VERSION = 150000


class WaitInstanceStep(BaseStep):
    name = "wait_instance"
    title = "wait for the instance"

    def apply(self, ctx: StepContext) -> dict:
        try:
            return Retry(deadline=INSTANCE_DEADLINE, max_delay=1, retry_on=(NotYet,)).call(
                lambda: self._running(ctx), "wait for the instance")
        except RetryTimeout as exc:
            raise WorkflowError(f"no running instance after {INSTANCE_DEADLINE:.0f}s: {exc.last}") from None

    def _running(self, ctx: StepContext) -> dict:
        group = self.group(ctx, ctx.resources["autoscaling_group"]) or {}
        version = ctx.resources["launch_template_version"]
        in_service = {"Instances": [i for i in group.get("Instances", [])
                                    if i.get("LifecycleState") == "InService"]}
        ids = [iid for iid, v in template_versions(self, ctx, in_service).items() if v in (None, version)]
        if not ids:
            raise NotYet("the group has no instance in service yet")
        reservations = self.call(ctx, "ec2", "describe_instances", InstanceIds=ids)["Reservations"]
        for inst in (i for r in reservations for i in r["Instances"]):
            if inst["State"]["Name"] == "running" and inst.get("PrivateIpAddress"):
                return {"instance_id": inst["InstanceId"], "private_ip": inst["PrivateIpAddress"]}
        raise NotYet("the instance is not running yet")


class WaitDatabaseStep(BaseStep):
    name = "wait_database"
    title = "wait for the database (TLS verify-full)"

    def apply(self, ctx: StepContext) -> dict:
        endpoint = ctx.vault.db_endpoint(ctx.resources["private_ip"])
        admin = ctx.vault.ensure_db_logins()[ADMIN]
        try:
            version = Retry(deadline=DB_DEADLINE, max_delay=0.5, retry_on=(DatabaseError,)).call(
                lambda: probe(endpoint, admin["user"], admin["password"]), "wait for the database")
        except RetryTimeout as exc:
            raise WorkflowError(f"database at {endpoint.address} not ready after {DB_DEADLINE:.0f}s: "
                                f"{exc.last}") from None
        if version < MIN_SERVER_VERSION:
            raise WorkflowError(f"database at {endpoint.address} runs {version}; eucadb needs 15+")
        return {"db_address": endpoint.address, "db_port": endpoint.port, "server_version": version}
