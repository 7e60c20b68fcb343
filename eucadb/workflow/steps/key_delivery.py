"""Step 5: deliver the server private key through Secrets Manager, readable only by the instance role.

(On Eucalyptus the instance would call IAM DownloadServerCertificate instead; both sit behind this one
step.) The instance also fetches from here the passphrase that protects its on-disk copy of the key.
"""
from __future__ import annotations

import hashlib
import json

from eucadb.cloud.client import PROPAGATION
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep, tags_dict
from eucadb.workflow.steps.certificate import key_material

# which payload the secret holds, so adoption never reads it back: the resource policy denies
# GetSecretValue to everyone but the instance role, eucadb's own principal included
PAYLOAD_TAG = "eucadb:payload-sha256"


def secret_payload(ctx: StepContext) -> str:
    material = key_material(ctx)
    return json.dumps({"private_key": material.server_key,
                       "key_passphrase": ctx.vault.ensure_key_passphrase()}, sort_keys=True)


def payload_digest(payload: str) -> str:
    """Names the payload without revealing it (it holds 256+ random bits)."""
    return hashlib.sha256(payload.encode()).hexdigest()


def resource_policy(role_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:PrincipalArn": role_arn}}}]}


class KeyDeliveryStep(BaseStep):
    name = "key_delivery"
    title = "key delivery (Secrets Manager)"

    def _describe(self, ctx: StepContext) -> dict | None:
        return self.call_absent_ok(ctx, "secretsmanager", "describe_secret", SecretId=self.names(ctx).secret)

    def adopt(self, ctx: StepContext) -> dict | None:
        described = self._describe(ctx)
        if not described or described.get("DeletedDate"):
            return None
        held = tags_dict(described.get("Tags")).get(PAYLOAD_TAG)
        if held != payload_digest(secret_payload(ctx)):
            return None
        return {"secret_arn": described["ARN"], "secret_id": self.names(ctx).secret}

    def apply(self, ctx: StepContext) -> dict:
        payload = secret_payload(ctx)
        described = self._describe(ctx)
        if described and described.get("DeletedDate"):
            self.call(ctx, "secretsmanager", "restore_secret", SecretId=described["ARN"])
        if described:
            arn = described["ARN"]
            self.call(ctx, "secretsmanager", "put_secret_value", SecretId=arn, SecretString=payload)
        else:  # a force-deleted secret of this name (a rollback, a teardown) frees it only later
            arn = PROPAGATION.call(lambda: self.call(
                ctx, "secretsmanager", "create_secret", Name=self.names(ctx).secret, SecretString=payload,
                Tags=self.names(ctx).tags(), Description=f"eucadb {ctx.deployment}: database server key"),
                f"create secret {self.names(ctx).secret}")["ARN"]
        role_arn = self.call(ctx, "iam", "get_role", RoleName=ctx.resources["role"])["Role"]["Arn"]
        self.call(ctx, "secretsmanager", "put_resource_policy", SecretId=arn,
                  ResourcePolicy=json.dumps(resource_policy(role_arn)))
        # last: the tag is what adoption trusts, so it must not say "done" before the policy is on
        self.call(ctx, "secretsmanager", "tag_resource", SecretId=arn,
                  Tags=[{"Key": PAYLOAD_TAG, "Value": payload_digest(payload)}])
        return {"secret_arn": arn, "secret_id": self.names(ctx).secret}

    def rollback(self, ctx: StepContext) -> None:
        self.call_absent_ok(ctx, "secretsmanager", "delete_secret", SecretId=self.names(ctx).secret,
                            ForceDeleteWithoutRecovery=True)
