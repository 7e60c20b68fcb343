"""What an instance is, as its metadata service tells it: identity, placement, user-data, role.

The role comes from the instance profile. Moto 5.2 does not report `IamInstanceProfile` on instances
an ASG launched from a launch template, so the profile is read from the template version the instance
came from (its `aws:ec2launchtemplate:*` tags), exactly what AWS would have put on the instance.
Role credentials are real STS AssumeRole answers from the cloud, cached until near expiry, asked
for as the EC2 service (`ec2.amazonaws.com`, with the key the API issued it): the role's trust
policy decides, as on AWS, and the cloud's root key cannot assume instance roles.
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from dataclasses import replace
from typing import Any, Callable

from botocore.exceptions import ClientError

from eucadb.cloud.client import CloudClients, error_code
from eucadb.cloud.local.layout import Layout
from eucadb.config import Config
from eucadb.errors import CloudError

log = logging.getLogger(__name__)
REFRESH_BEFORE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Role:
    profile_arn: str
    profile_id: str
    name: str
    arn: str


@dataclass(frozen=True)
class InstanceView:
    """Everything the metadata service answers for one instance (immutable; replaced on change)."""
    instance_id: str
    image_id: str
    instance_type: str
    private_ip: str
    zone: str
    region: str
    account_id: str
    root_device: str
    devices: tuple[str, ...] = ()          # attached non-root devices, e.g. ('/dev/sdf',)
    user_data: bytes | None = None
    role: Role | None = None
    launched: str = ""


def _tag(instance: dict, key: str) -> str | None:
    return next((t["Value"] for t in instance.get("Tags", []) if t["Key"] == key), None)


def service_clients(config: Config) -> CloudClients:
    """Clients that act as the EC2 service principal (its key file, written 0600 by the API)."""
    layout = Layout.from_config(config)
    held = layout.service_credentials()
    if held is None:
        raise CloudError(f"the embedded cloud API issued no EC2 service key ({layout.service_credentials_file} "
                         "is missing): restart it with `eucadb cloud down` and `eucadb cloud up`")
    return CloudClients(replace(config, values={**config.values, **held}))


class Identities:
    """Resolves user-data, the instance profile's role, and role credentials (thread-safe).
    `vendor` gives the clients role credentials are asked with (the EC2 service's), built on first use."""

    def __init__(self, clients: CloudClients, region: str, vendor: Callable[[], CloudClients] | None = None):
        self.clients = clients
        self.region = region
        self._vendor_factory = vendor or (lambda: clients)
        self._vendor: CloudClients | None = None
        self._lock = threading.Lock()
        self._creds: dict[str, dict] = {}

    def view(self, instance: dict, account_id: str, devices: tuple[str, ...] = (),
             previous: InstanceView | None = None) -> InstanceView:
        """Build the view; user-data and role are looked up once per instance launch."""
        launched = str(instance.get("LaunchTime", ""))
        if previous is not None and previous.launched == launched:
            user_data, role = previous.user_data, previous.role
        else:
            user_data, role = self._user_data(instance["InstanceId"]), self._role(instance)
        return InstanceView(
            instance_id=instance["InstanceId"], image_id=instance["ImageId"],
            instance_type=instance["InstanceType"], private_ip=instance["PrivateIpAddress"],
            zone=instance["Placement"]["AvailabilityZone"], region=self.region, account_id=account_id,
            root_device=instance.get("RootDeviceName") or "/dev/sda1", devices=devices,
            user_data=user_data, role=role, launched=launched)

    def _user_data(self, instance_id: str) -> bytes | None:
        answer = self.clients.call("ec2", "describe_instance_attribute", InstanceId=instance_id,
                                   Attribute="userData")
        value = answer.get("UserData", {}).get("Value")
        return base64.b64decode(value) if value else None

    def _profile(self, instance: dict) -> dict | None:
        if instance.get("IamInstanceProfile"):
            return instance["IamInstanceProfile"]
        template_id = _tag(instance, "aws:ec2launchtemplate:id")
        version = _tag(instance, "aws:ec2launchtemplate:version")
        if not template_id or not version:
            return None
        versions = self.clients.call("ec2", "describe_launch_template_versions",
                                     LaunchTemplateId=template_id, Versions=[version])
        data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        return data.get("IamInstanceProfile")

    def _role(self, instance: dict) -> Role | None:
        profile = self._profile(instance)
        if not profile:
            return None
        name = profile.get("Name") or profile["Arn"].rsplit("/", 1)[-1]
        try:
            found = self.clients.call("iam", "get_instance_profile", InstanceProfileName=name)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                log.warning("%s: instance profile %s does not exist", instance["InstanceId"], name)
                return None
            raise
        profile = found["InstanceProfile"]
        if not profile.get("Roles"):
            return None
        role = profile["Roles"][0]
        return Role(profile["Arn"], profile["InstanceProfileId"], role["RoleName"], role["Arn"])

    def credentials(self, view: InstanceView) -> dict:
        """Role credentials for the instance, shaped as IMDS serves them."""
        assert view.role is not None
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            cached = self._creds.get(view.instance_id)
            if cached and cached["_expires"] - REFRESH_BEFORE > now:
                return cached
            if self._vendor is None:
                self._vendor = self._vendor_factory()
            answer = self._vendor.call("sts", "assume_role", RoleArn=view.role.arn,
                                       RoleSessionName=view.instance_id, DurationSeconds=3600)
            creds: dict[str, Any] = answer["Credentials"]
            expires = creds["Expiration"].astimezone(dt.timezone.utc)
            self._creds[view.instance_id] = cached = {
                "Code": "Success", "LastUpdated": _iso(now), "Type": "AWS-HMAC",
                "AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                "Token": creds["SessionToken"], "Expiration": _iso(expires), "_expires": expires}
            return cached

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._creds.pop(instance_id, None)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
