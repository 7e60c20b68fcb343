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

from eucadb.properties.registry import WORKER
from eucadb.workflow import credentials, userdata
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep
from eucadb.workflow.steps.certificate import key_material
from eucadb.workflow.vault import logins_digest


# IMDSv2 only: with v1 on, one forged GET from any process on the host yields the role's
# credentials, and with them the server key. Hop limit 1: nothing on the instance runs in containers.
METADATA_OPTIONS = {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1}


class LaunchTemplateStep(BaseStep):
    name = "launch_template"
    title = "launch template"

    def _inputs(self, ctx: StepContext) -> tuple[dict, str]:
        """Everything the template depends on (secrets only as digests) and its digest."""
        props, res = ctx.properties, ctx.resources
        material = key_material(ctx)
        creds = ctx.vault.ensure_db_logins()
        inputs = {
            "image": props[WORKER + "image"], "instance_type": props[WORKER + "instance_type"],
            "keyname": props[WORKER + "keyname"], "security_group": res["security_group_id"],
            "profile": res["instance_profile"], "secret_id": res["secret_id"],
            "volume_id": res["volume_id"], "allowed_cidrs": res["allowed_cidrs"],
            "init_script": props[WORKER + "init_script"], "ntp_server": props[WORKER + "ntp_server"],
            "server_cert": material.server_cert, "ca_cert": material.ca_cert,
            "credentials": hashlib.sha256(json.dumps(creds, sort_keys=True).encode()).hexdigest(),
            "endpoint": self.clients(ctx).endpoint, "region": self.clients(ctx).config["cloud.region"],
            "metadata_options": METADATA_OPTIONS,
            "backup": {"bucket": res["backup_bucket"], "prefix": res["backup_prefix"],
                       "archive_timeout": props[WORKER + "backup.archive_timeout"]},
        }
        if res.get("volume_restore"):   # a restored volume: only then, so other digests stay as they were
            inputs["restore"] = res["volume_restore"]
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]
        return inputs, f"eucadb:{digest}"

    def _data(self, ctx: StepContext, inputs: dict) -> dict:
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
            restore=inputs.get("restore"))
        data = {
            "ImageId": inputs["image"], "InstanceType": inputs["instance_type"],
            "SecurityGroupIds": [inputs["security_group"]],
            "IamInstanceProfile": {"Name": inputs["profile"]}, "MetadataOptions": inputs["metadata_options"],
            "UserData": base64.b64encode(text.encode()).decode(),
            "TagSpecifications": [{"ResourceType": "instance",
                                   "Tags": self.names(ctx).tags(self.names(ctx).db)}],
        }
        if inputs["keyname"]:
            data["KeyName"] = inputs["keyname"]
        return data

    def _latest(self, ctx: StepContext) -> dict | None:
        found = self.call_absent_ok(ctx, "ec2", "describe_launch_template_versions",
                                    LaunchTemplateName=self.names(ctx).db, Versions=["$Latest"])
        versions = found["LaunchTemplateVersions"] if found else []
        return versions[0] if versions else None

    def adopt(self, ctx: StepContext) -> dict | None:
        _, description = self._inputs(ctx)
        latest = self._latest(ctx)
        if latest and latest.get("VersionDescription") == description:
            return {"launch_template_id": latest["LaunchTemplateId"],
                    "launch_template_version": str(latest["VersionNumber"]),
                    "credentials_digest": logins_digest(ctx.vault.ensure_db_logins())}
        return None

    def apply(self, ctx: StepContext) -> dict:
        inputs, description = self._inputs(ctx)
        data = self._data(ctx, inputs)
        name = self.names(ctx).db
        if self._latest(ctx) is None:
            made = self.call(ctx, "ec2", "create_launch_template", LaunchTemplateName=name,
                             VersionDescription=description, LaunchTemplateData=data,
                             TagSpecifications=[{"ResourceType": "launch-template",
                                                 "Tags": self.names(ctx).tags(name)}])["LaunchTemplate"]
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
        if self._latest(ctx) is not None:
            self.call_absent_ok(ctx, "ec2", "delete_launch_template", LaunchTemplateName=self.names(ctx).db)
