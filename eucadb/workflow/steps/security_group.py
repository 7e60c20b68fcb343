"""Step 2: the security group — TCP 5432 from the allowed CIDRs and from nowhere else."""
from __future__ import annotations

from botocore.exceptions import ClientError

from eucadb.cloud.client import error_code
from eucadb.errors import WorkflowError
from eucadb.retry import NotYet, Retry
from eucadb.workflow.deployment import TAG
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep, tags_dict

PORT = 5432


def desired_rules(cidrs: list[str]) -> list[dict]:
    v4 = [{"CidrIp": c} for c in cidrs if ":" not in c]
    v6 = [{"CidrIpv6": c} for c in cidrs if ":" in c]
    rule = {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT}
    return [{**rule, **({"IpRanges": v4} if v4 else {}), **({"Ipv6Ranges": v6} if v6 else {})}]


def _cidrs(group: dict) -> set[str]:
    out: set[str] = set()
    for perm in group.get("IpPermissions", []):
        out |= {r["CidrIp"] for r in perm.get("IpRanges", [])}
        out |= {r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])}
    return out


class SecurityGroupStep(BaseStep):
    name = "security_group"
    title = "security group"

    def _find(self, ctx: StepContext, tagged: bool = True) -> dict | None:
        groups = self.call(ctx, "ec2", "describe_security_groups", Filters=[
            {"Name": "group-name", "Values": [self.names(ctx).db]},
            *(self.tag_filter(ctx) if tagged else [{"Name": "vpc-id", "Values": [ctx.resources["vpc_id"]]}])])
        return groups["SecurityGroups"][0] if groups["SecurityGroups"] else None

    def _create(self, ctx: StepContext) -> dict:
        name = self.names(ctx).db
        try:
            group_id = self.call(ctx, "ec2", "create_security_group", GroupName=name,
                                 Description=f"eucadb {ctx.deployment} append-only database",
                                 VpcId=ctx.resources["vpc_id"], TagSpecifications=[
                                     {"ResourceType": "security-group", "Tags": self.names(ctx).tags(name)}])["GroupId"]
        except ClientError as exc:
            if error_code(exc) != "InvalidGroup.Duplicate":
                raise
            return self._existing(ctx)
        return {"GroupId": group_id, "IpPermissions": []}

    def _existing(self, ctx: StepContext) -> dict:
        """The name is taken in the VPC: ours, made by a run whose tagged lookup did not see it yet
        (eventual consistency), or someone else's, which eucadb must not take over."""
        def lookup() -> dict:
            group = self._find(ctx, tagged=False)
            if group is None:
                raise NotYet(f"security group {self.names(ctx).db} not visible yet")
            return group
        group = Retry(deadline=60, retry_on=(NotYet,)).call(lookup, f"find security group {self.names(ctx).db}")
        if tags_dict(group.get("Tags")).get(TAG) != ctx.deployment:
            raise WorkflowError(
                f"a security group named {self.names(ctx).db} ({group['GroupId']}) already exists in "
                f"{ctx.resources['vpc_id']} and is not this deployment's (no tag {TAG}={ctx.deployment}); "
                "delete or rename it, or tag it if it is eucadb's")
        return group

    def adopt(self, ctx: StepContext) -> dict | None:
        group = self._find(ctx)
        if group and _cidrs(group) == set(ctx.resources["allowed_cidrs"]) and all(
                p.get("FromPort") == PORT for p in group.get("IpPermissions", [])):
            return {"security_group_id": group["GroupId"]}
        return None

    def apply(self, ctx: StepContext) -> dict:
        group = self._find(ctx) or self._create(ctx)
        if group.get("IpPermissions"):
            self.call(ctx, "ec2", "revoke_security_group_ingress", GroupId=group["GroupId"],
                      IpPermissions=[{k: v for k, v in p.items() if k != "UserIdGroupPairs" or v}
                                     for p in group["IpPermissions"]])
        self.call(ctx, "ec2", "authorize_security_group_ingress", GroupId=group["GroupId"],
                  IpPermissions=desired_rules(ctx.resources["allowed_cidrs"]))
        return {"security_group_id": group["GroupId"]}

    def rollback(self, ctx: StepContext) -> None:
        group = self._find(ctx)
        if group:
            # DependencyViolation while instances still use it is transient: the engine retries.
            self.call_absent_ok(ctx, "ec2", "delete_security_group", GroupId=group["GroupId"])
