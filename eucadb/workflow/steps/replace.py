"""Step 9: rolling replacement — instances launched from an older template version are replaced.

After a change that needs a new instance (image, type, key, init script…), the launch template got a
new version and the group points at it; this step terminates the outdated instance so the group
launches a fresh one, which reattaches the same data volume at boot. One instance, so "rolling"
means: the old one goes, the new one comes, the data stays.
"""
from __future__ import annotations

from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep, tags_dict

VERSION_TAG = "aws:ec2launchtemplate:version"   # set by EC2 on instances launched from a template
# set by eucadb on a promoted replica: the primary template version it now runs as, so a later launch
# with unchanged inputs does not replace the new primary for having booted as a replica
PROMOTED_TAG = "eucadb:template-version"


def template_versions(step: BaseStep, ctx: StepContext, group: dict) -> dict[str, str | None]:
    """Instance id → the launch template version it was launched from (None if unknown).

    The instance's own `aws:ec2launchtemplate:version` tag is what EC2 recorded at launch; the
    group's per-instance field is the fallback (moto reports the group's current version there)."""
    members = {i["InstanceId"]: i.get("LaunchTemplate", {}).get("Version")
               for i in group.get("Instances", [])
               if i.get("LifecycleState") not in ("Terminating", "Terminated")}
    if not members:
        return {}
    reservations = step.call(ctx, "ec2", "describe_instances", InstanceIds=list(members))["Reservations"]
    tagged = {i["InstanceId"]: tags_dict(i.get("Tags")).get(PROMOTED_TAG) or tags_dict(i.get("Tags")).get(VERSION_TAG)
              for r in reservations for i in r["Instances"]}
    return {iid: tagged.get(iid) or fallback for iid, fallback in members.items()}


class ReplaceOutdatedStep(BaseStep):
    name = "replace_outdated"
    title = "replace outdated instances"

    def _outdated(self, ctx: StepContext) -> list[str]:
        group = self.group(ctx, ctx.resources["autoscaling_group"])
        if group is None:
            return []
        wanted = ctx.resources["launch_template_version"]
        return [iid for iid, v in template_versions(self, ctx, group).items() if v not in (None, wanted)]

    def adopt(self, ctx: StepContext) -> dict | None:
        return None if self._outdated(ctx) else {"replaced": []}

    def apply(self, ctx: StepContext) -> dict:
        old = self._outdated(ctx)
        if old:
            # The group (min = desired = 1) replaces a terminated member from its current version.
            self.call(ctx, "ec2", "terminate_instances", InstanceIds=old)
        return {"replaced": old}
