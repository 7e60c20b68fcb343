"""Step 7: the launch template — image, type, key, security group, profile and user-data.

User-data carries only non-secret configuration plus the DB credentials sealed to the server
certificate. Sealing is randomised, so "is the template current?" is decided on a digest of the
inputs (kept in the version description), and a change yields a new template version — the hook
for rolling replacement.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from eucadb.properties.registry import WORKER
from eucadb.workflow import credentials, userdata
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep
from eucadb.workflow.steps.certificate import key_material
from eucadb.workflow.vault import logins_digest


# IMDSv2 only: with v1 on, one forged GET from any process on the host yields the role's
# credentials, and with them the server key. Hop limit 1: nothing on the instance runs in containers.
METADATA_OPTIONS = {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1}


@dataclass(frozen=True)
class TemplateTarget:
    """Which member's template: its name, its volume and its replication role (None: the
    single-instance primary, whose user-data is exactly what it was before replicas existed)."""
    name: str
    volume_id: str
    replication: dict | None = None
    tags: list = field(default_factory=list)


class LaunchTemplateStep(BaseStep):
    name = "launch_template"
    title = "launch template"

    def target(self, ctx: StepContext) -> TemplateTarget:
        """The primary member's template (member 0: the deployment's historical names)."""
        primary = self.primary(ctx)
        return TemplateTarget(primary.group, ctx.resources["volume_id"], None, primary.primary_tags(primary.group))

    def _inputs(self, ctx: StepContext, target: TemplateTarget | None = None) -> tuple[dict, str]:
        """Everything the template depends on (secrets only as digests) and its digest."""
        target = target or self.target(ctx)
        props, res = ctx.properties, ctx.resources
        material = key_material(ctx)
        creds = ctx.vault.ensure_db_logins()
        inputs = {
            "image": props[WORKER + "image"], "instance_type": props[WORKER + "instance_type"],
            "keyname": props[WORKER + "keyname"], "security_group": res["security_group_id"],
            "profile": res["instance_profile"], "secret_id": res["secret_id"],
            "volume_id": target.volume_id, "allowed_cidrs": res["allowed_cidrs"],
            "init_script": props[WORKER + "init_script"], "ntp_server": props[WORKER + "ntp_server"],
            "server_cert": material.server_cert, "ca_cert": material.ca_cert,
            "credentials": hashlib.sha256(json.dumps(creds, sort_keys=True).encode()).hexdigest(),
            "endpoint": self.clients(ctx).endpoint, "region": self.clients(ctx).config["cloud.region"],
            "metadata_options": METADATA_OPTIONS,
            "backup": {"bucket": res["backup_bucket"], "prefix": res["backup_prefix"],
                       "archive_timeout": props[WORKER + "backup.archive_timeout"]},
        }
        if res.get("volume_restore") and target.replication is None:   # a restored primary volume: only
            inputs["restore"] = res["volume_restore"]                      # then, so other digests stay
        if target.replication is not None:
            inputs["replication"] = target.replication
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]
        return inputs, f"eucadb:{digest}"

    def _data(self, ctx: StepContext, inputs: dict, target: TemplateTarget) -> dict:
        material = key_material(ctx)
        sealed = credentials.seal(json.dumps(ctx.vault.ensure_db_logins()).encode(),
                                  material.server_cert, ctx.deployment)
        endpoint = inputs["endpoint"]
        text = userdata.build_user_data(
            deployment=ctx.deployment, endpoint_url=None if endpoint == "default" else endpoint,
            region=inputs["region"], secret_id=inputs["secret_id"], volume_id=inputs["volume_id"],
            dns_name=self.names(ctx).dns_name, server_cert=material.server_cert,
            ca_cert=material.ca_cert, allowed_cidrs=inputs["allowed_cidrs"],
            instance_type=inputs["instance_type"], init_script=inputs["init_script"],
            ntp_server=inputs["ntp_server"], sealed_credentials=sealed, backup=inputs["backup"],
            restore=inputs.get("restore"), replication=inputs.get("replication"))
        data = {
            "ImageId": inputs["image"], "InstanceType": inputs["instance_type"],
            "SecurityGroupIds": [inputs["security_group"]],
            "IamInstanceProfile": {"Name": inputs["profile"]}, "MetadataOptions": inputs["metadata_options"],
            "UserData": base64.b64encode(text.encode()).decode(),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": target.tags}],
        }
        if inputs["keyname"]:
            data["KeyName"] = inputs["keyname"]
        return data

    def _latest(self, ctx: StepContext, name: str | None = None) -> dict | None:
        found = self.call_absent_ok(ctx, "ec2", "describe_launch_template_versions",
                                    LaunchTemplateName=name or self.primary(ctx).group, Versions=["$Latest"])
        versions = found["LaunchTemplateVersions"] if found else []
        return versions[0] if versions else None

    def adopt(self, ctx: StepContext, target: TemplateTarget | None = None) -> dict | None:
        target = target or self.target(ctx)
        _, description = self._inputs(ctx, target)
        latest = self._latest(ctx, target.name)
        if latest and latest.get("VersionDescription") == description:
            return {"launch_template_id": latest["LaunchTemplateId"],
                    "launch_template_version": str(latest["VersionNumber"]),
                    "credentials_digest": logins_digest(ctx.vault.ensure_db_logins())}
        return None

    def apply(self, ctx: StepContext, target: TemplateTarget | None = None) -> dict:
        target = target or self.target(ctx)
        inputs, description = self._inputs(ctx, target)
        data = self._data(ctx, inputs, target)
        name = target.name
        if self._latest(ctx, name) is None:
            made = self.call(ctx, "ec2", "create_launch_template", LaunchTemplateName=name,
                             VersionDescription=description, LaunchTemplateData=data,
                             TagSpecifications=[{"ResourceType": "launch-template",
                                                 "Tags": target.tags}])["LaunchTemplate"]
            return {"launch_template_id": made["LaunchTemplateId"],
                    "launch_template_version": str(made["LatestVersionNumber"]),
                    "credentials_digest": logins_digest(ctx.vault.ensure_db_logins())}
        version = self.call(ctx, "ec2", "create_launch_template_version", LaunchTemplateName=name,
                            VersionDescription=description,
                            LaunchTemplateData=data)["LaunchTemplateVersion"]
        self.call(ctx, "ec2", "modify_launch_template", LaunchTemplateName=name,
                  DefaultVersion=str(version["VersionNumber"]))
        return {"launch_template_id": version["LaunchTemplateId"],
                "launch_template_version": str(version["VersionNumber"]),
                "credentials_digest": logins_digest(ctx.vault.ensure_db_logins())}

    def rollback(self, ctx: StepContext) -> None:
        name = self.primary(ctx).group
        if self._latest(ctx, name) is not None:
            self.call_absent_ok(ctx, "ec2", "delete_launch_template", LaunchTemplateName=name)
