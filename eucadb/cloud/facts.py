"""Read-only questions about the cloud that validation and admission checks ask.

Narrow on purpose: a validator needs to know whether a thing exists and a few of its attributes,
not the whole EC2 API. "Not found" answers None; a cloud that cannot be reached raises CloudUnreachable.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from eucadb.cloud.client import CloudClients, error_code


class CloudFacts:
    def __init__(self, clients: CloudClients):
        self.clients = clients

    def _describe_one(self, operation: str, key: str, not_found: tuple[str, ...], **params: Any):
        try:
            items = self.clients.call("ec2", operation, **params).get(key, [])
        except ClientError as exc:
            if error_code(exc) in not_found:
                return None
            raise
        return items[0] if items else None

    def image(self, image_id: str) -> dict | None:
        return self._describe_one("describe_images", "Images",
                                  ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"),
                                  ImageIds=[image_id])

    def key_pair(self, name: str) -> dict | None:
        return self._describe_one("describe_key_pairs", "KeyPairs", ("InvalidKeyPair.NotFound",),
                                  KeyNames=[name])

    def volume(self, volume_id: str) -> dict | None:
        return self._describe_one("describe_volumes", "Volumes",
                                  ("InvalidVolume.NotFound", "InvalidVolume.Malformed"),
                                  VolumeIds=[volume_id])

    def zones(self) -> list[str]:
        zones = self.clients.call("ec2", "describe_availability_zones")["AvailabilityZones"]
        # Local Zones and Wavelength zones are listed too once opted in: not where a database goes
        return sorted(z["ZoneName"] for z in zones if z.get("State", "available") == "available"
                      and z.get("ZoneType", "availability-zone") == "availability-zone")

    def instance_type(self, name: str) -> dict | None:
        """One instance type (a single call; the full list is ~1400 entries on AWS)."""
        return self._describe_one("describe_instance_types", "InstanceTypes",
                                  ("InvalidInstanceType", "InvalidParameterValue"), InstanceTypes=[name])

    def instance_types(self) -> set[str]:
        pages = self.clients.guard(  # the client inside: a retry after a key rotation gets a new one
            lambda: list(self.clients.client("ec2").get_paginator("describe_instance_types").paginate()),
            "ec2.describe_instance_types")
        return {it["InstanceType"] for page in pages for it in page["InstanceTypes"]}
