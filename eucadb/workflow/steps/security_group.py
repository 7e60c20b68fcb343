"""Step 2: the security group — TCP 5432 from the allowed CIDRs and from nowhere else."""
from __future__ import annotations

from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep

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

    def _find(self, ctx: StepContext) -> dict | None:
        groups = self.call(ctx, "ec2", "describe_security_groups", Filters=[
            {"Name": "group-name", "Values": [self.names(ctx).db]}, *self.tag_filter(ctx)])
        return groups["SecurityGroups"][0] if groups["SecurityGroups"] else None

    def adopt(self, ctx: StepContext) -> dict | None:
        group = self._find(ctx)
        if group and _cidrs(group) == set(ctx.resources["allowed_cidrs"]) and all(
                p.get("FromPort") == PORT for p in group.get("IpPermissions", [])):
            return {"security_group_id": group["GroupId"]}
        return None

    def apply(self, ctx: StepContext) -> dict:
        group = self._find(ctx)
        if group is None:
            group_id = self.call(ctx, "ec2", "create_security_group", GroupName=self.names(ctx).db,
                                 Description=f"eucadb {ctx.deployment} append-only database",
                                 VpcId=ctx.resources["vpc_id"], TagSpecifications=[
                                     {"ResourceType": "security-group",
                                      "Tags": self.names(ctx).tags(self.names(ctx).db)}])["GroupId"]
            group = {"GroupId": group_id, "IpPermissions": []}
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
