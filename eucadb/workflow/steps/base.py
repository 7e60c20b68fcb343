"""What every step shares: names, tags, the cloud call wrapper and "absent is fine" deletes."""
from __future__ import annotations

from typing import Any, Callable

from botocore.exceptions import ClientError

from eucadb.cloud.client import CloudClients, error_code, error_message
from eucadb.workflow.deployment import TAG, Names
from eucadb.workflow.engine import StepContext
from eucadb.workflow.members import Member

NOT_FOUND = frozenset({
    "NoSuchEntity", "ResourceNotFoundException", "InvalidGroup.NotFound", "InvalidVolume.NotFound",
    "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound",
    "InvalidInstanceID.NotFound",
})


def is_absent(exc: ClientError) -> bool:
    """The resource is not there. AutoScaling says so with a ValidationError ("AutoScalingGroup
    name not found"), a code it also uses for bad input, so there the message decides."""
    code = error_code(exc)
    return code in NOT_FOUND or (code == "ValidationError" and "not found" in error_message(exc).lower())


class BaseStep:
    name = "step"
    title = "step"

    # helpers ------------------------------------------------------------------------------------
    @staticmethod
    def names(ctx: StepContext) -> Names:
        return Names(ctx.deployment)

    @staticmethod
    def clients(ctx: StepContext) -> CloudClients:
        return ctx.app.clients

    @staticmethod
    def primary(ctx: StepContext) -> Member:
        """The member the store records as the primary (member 0 until a failover moves it): the
        launch workflow's volume, template and group are its."""
        from eucadb.store.replication import primary_record
        return Member(ctx.deployment, primary_record(ctx.app.store, ctx.deployment).member)

    def call(self, ctx: StepContext, service: str, operation: str, **params: Any) -> dict:
        return self.clients(ctx).call(service, operation, **params)

    def call_absent_ok(self, ctx: StepContext, service: str, operation: str, **params: Any) -> dict | None:
        """For deletes and lookups: a resource that is already gone is not an error."""
        try:
            return self.call(ctx, service, operation, **params)
        except ClientError as exc:
            if is_absent(exc):
                return None
            raise

    def group(self, ctx: StepContext, name: str | None = None) -> dict | None:
        """An autoscaling group by name (default: the primary member's), or None."""
        groups = self.call(ctx, "autoscaling", "describe_auto_scaling_groups",
                           AutoScalingGroupNames=[name or self.primary(ctx).group])["AutoScalingGroups"]
        return groups[0] if groups else None

    @staticmethod
    def tag_filter(ctx: StepContext) -> list[dict]:
        return [{"Name": f"tag:{TAG}", "Values": [ctx.deployment]}]

    # defaults: steps without cloud resources -----------------------------------------------------
    def adopt(self, ctx: StepContext) -> dict | None:
        return None

    def rollback(self, ctx: StepContext) -> None:
        return None


def tags_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def first(items: list, predicate: Callable[[Any], bool] = lambda _: True) -> Any:
    return next((i for i in items if predicate(i)), None)
