"""Step 4: IAM role + instance profile with least privilege.

The instance may read its own key secret, attach/describe volumes tagged with its deployment and
read/write/delete objects under its own prefix of the backup bucket (Barman Cloud) — nothing else. Eucalyptus and AWS both evaluate these policies; moto stores them.
"""
from __future__ import annotations

import json
from urllib.parse import unquote

from eucadb.workflow.deployment import TAG
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
POLICY_NAME = "eucadb-db-instance"


def instance_policy(deployment: str, region: str, identity_arn: str, secret_name: str,
                    bucket: str, prefix: str) -> dict:
    """`identity_arn` is eucadb's own (GetCallerIdentity): its partition and account are the role's
    (aws, aws-cn, aws-us-gov … — not always `aws`).

    S3: objects under `prefix/` only (Barman aborts the multipart upload of a failed base backup,
    hence AbortMultipartUpload), and listing only with a prefix under it. No HeadBucket (which S3
    authorizes as a prefix-less ListBucket): the clients the instance runs call it only for --test."""
    parts = identity_arn.split(":")  # arn:PARTITION:sts::ACCOUNT:assumed-role/…
    arn, account = f"arn:{parts[1]}", parts[4]
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadOwnKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": f"{arn}:secretsmanager:{region}:{account}:secret:{secret_name}-*"},
        {"Sid": "AttachOwnVolume", "Effect": "Allow", "Action": ["ec2:AttachVolume"],
         "Resource": [f"{arn}:ec2:{region}:{account}:volume/*",
                      f"{arn}:ec2:{region}:{account}:instance/*"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/{TAG}": deployment}}},
        {"Sid": "DescribeVolumes", "Effect": "Allow", "Action": ["ec2:DescribeVolumes"],
         "Resource": "*"},
        {"Sid": "OwnBackupObjects", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": f"{arn}:s3:::{bucket}/{prefix}/*"},
        {"Sid": "ListOwnBackupPrefix", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": f"{arn}:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": f"{prefix}/*"}}},
    ]}


def _document(document: dict | str) -> dict:
    """GetRolePolicy's document: boto3 hands it decoded; a URL-encoded JSON string elsewhere."""
    return json.loads(unquote(document)) if isinstance(document, str) else document


class InstanceRoleStep(BaseStep):
    name = "instance_role"
    title = "instance role and profile"

    def _profile(self, ctx: StepContext) -> dict | None:
        found = self.call_absent_ok(ctx, "iam", "get_instance_profile",
                                    InstanceProfileName=self.names(ctx).db)
        return found["InstanceProfile"] if found else None

    def adopt(self, ctx: StepContext) -> dict | None:
        profile = self._profile(ctx)
        name = self.names(ctx).db
        if not profile or not any(r["RoleName"] == name for r in profile.get("Roles", [])):
            return None
        held = self.call_absent_ok(ctx, "iam", "get_role_policy", RoleName=name, PolicyName=POLICY_NAME)
        if held is None or _document(held["PolicyDocument"]) != self._policy(ctx):
            return None  # apply puts the policy this eucadb writes (an older one is replaced)
        return {"instance_profile": name, "instance_profile_arn": profile["Arn"], "role": name}

    def _policy(self, ctx: StepContext) -> dict:
        identity = self.call(ctx, "sts", "get_caller_identity")["Arn"]
        names = self.names(ctx)
        return instance_policy(ctx.deployment, self.clients(ctx).config["cloud.region"], identity,
                               names.secret, names.backup_bucket, names.backup_prefix)

    def apply(self, ctx: StepContext) -> dict:
        name = self.names(ctx).db
        path = f"/eucadb/{ctx.deployment}/"
        if self.call_absent_ok(ctx, "iam", "get_role", RoleName=name) is None:
            self.call(ctx, "iam", "create_role", RoleName=name, Path=path,
                      AssumeRolePolicyDocument=json.dumps(TRUST), Tags=self.names(ctx).tags())
        self.call(ctx, "iam", "put_role_policy", RoleName=name, PolicyName=POLICY_NAME,
                  PolicyDocument=json.dumps(self._policy(ctx)))
        profile = self._profile(ctx)
        if profile is None:
            profile = self.call(ctx, "iam", "create_instance_profile", InstanceProfileName=name,
                                Path=path, Tags=self.names(ctx).tags())["InstanceProfile"]
        if not any(r["RoleName"] == name for r in profile.get("Roles", [])):
            self.call(ctx, "iam", "add_role_to_instance_profile", InstanceProfileName=name, RoleName=name)
        return {"instance_profile": name, "instance_profile_arn": profile["Arn"], "role": name}

    def rollback(self, ctx: StepContext) -> None:
        name = self.names(ctx).db
        profile = self._profile(ctx)
        if profile:
            for role in profile.get("Roles", []):
                self.call_absent_ok(ctx, "iam", "remove_role_from_instance_profile",
                                    InstanceProfileName=name, RoleName=role["RoleName"])
            self.call_absent_ok(ctx, "iam", "delete_instance_profile", InstanceProfileName=name)
        if self.call_absent_ok(ctx, "iam", "get_role", RoleName=name) is not None:
            self.call_absent_ok(ctx, "iam", "delete_role_policy", RoleName=name, PolicyName=POLICY_NAME)
            self.call_absent_ok(ctx, "iam", "delete_role", RoleName=name)
