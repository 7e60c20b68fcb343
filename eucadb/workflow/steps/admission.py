"""Step 1: admission checks — refuse to build anything the cloud cannot run.

Checks every property the cloud must confirm (image, instance type, key pair, zones, volume) and picks
the network: the VPC tagged `eucadb:vpc` (else the default VPC, else the only one) and its subnets in the
configured zones. Nothing is created, so there is nothing to roll back.
"""
from __future__ import annotations

import socket
from urllib.parse import urlparse

from eucadb.errors import WorkflowError
from eucadb.properties.registry import BY_NAME, WORKER
from eucadb.properties.validators import check
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep, first

VPC_TAG = "eucadb:vpc"


def front_end_address(endpoint: str | None, region: str) -> str:
    """The address this host uses towards the cloud (a UDP connect sends no packet)."""
    host = (urlparse(endpoint).hostname if endpoint and endpoint != "default"
            else f"ec2.{region}.amazonaws.com")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((socket.gethostbyname(host), 9))
            return s.getsockname()[0]
    except OSError as exc:
        raise WorkflowError(f"cannot tell this host's address towards {host} ({exc}); "
                            f"set {WORKER}allowed_cidrs explicitly") from None


def check_boot_mode(facts, image_id: str, instance_type: str) -> None:
    """A UEFI-only image (image/build.sh's disk) on a type that boots legacy BIOS only would be
    launched and never start; say so before anything is built."""
    mode = (facts.image(image_id) or {}).get("BootMode")
    supported = (facts.instance_type(instance_type) or {}).get("SupportedBootModes") or []
    if mode in ("uefi", "legacy-bios") and supported and mode not in supported:
        raise WorkflowError(f"{WORKER}instance_type: {instance_type} boots {' or '.join(supported)} only, "
                            f"but image {image_id} needs {mode}; choose a type that supports {mode} "
                            "(e.g. t3, m5, m6i) or another image")


class AdmissionStep(BaseStep):
    name = "admission"
    title = "admission checks"

    def apply(self, ctx: StepContext) -> dict:
        props = ctx.properties
        if not props[WORKER + "image"]:
            raise WorkflowError(f"{WORKER}image is not set")
        facts = ctx.app.facts
        for prop in BY_NAME.values():
            if prop.cloud_check and prop.name.startswith(WORKER):
                problem = check(prop.cloud_check, facts, props[prop.name])
                if problem:
                    raise WorkflowError(f"{prop.name}: {problem}")
        check_boot_mode(facts, props[WORKER + "image"], props[WORKER + "instance_type"])
        configured = props[WORKER + "availability_zones"] or None
        vpc_id, subnets = self._network(ctx, configured, facts.zones())
        zones = list(configured) if configured else sorted(subnets)  # a new volume goes in zones[0]
        volume_zone = None
        if props[WORKER + "volume"]:
            volume_zone = facts.volume(props[WORKER + "volume"])["AvailabilityZone"]
            if volume_zone not in zones:
                raise WorkflowError(f"volume {props[WORKER + 'volume']} is in {volume_zone}, "
                                    f"which is not one of the zones it can launch in ({', '.join(zones)})")
        cidrs = props[WORKER + "allowed_cidrs"] or [
            f"{front_end_address(ctx.app.clients.endpoint, ctx.app.config['cloud.region'])}/32"]
        return {"vpc_id": vpc_id, "subnets": subnets, "zones": zones, "allowed_cidrs": cidrs,
                "volume_zone": volume_zone or zones[0]}

    def _network(self, ctx: StepContext, configured: list[str] | None,
                 available: list[str]) -> tuple[str, dict[str, str]]:
        """The VPC and one subnet per zone: every configured zone must have one; with none
        configured, the available zones the VPC has subnets in (a VPC seldom spans them all)."""
        vpcs = self.call(ctx, "ec2", "describe_vpcs")["Vpcs"]
        vpc = first(vpcs, lambda v: any(t["Key"] == VPC_TAG for t in v.get("Tags", []))) or \
            first(vpcs, lambda v: v.get("IsDefault")) or (vpcs[0] if len(vpcs) == 1 else None)
        if vpc is None:
            raise WorkflowError(f"no VPC to launch into: tag one with {VPC_TAG}, or have a default VPC")
        found = self.call(ctx, "ec2", "describe_subnets", Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "availability-zone", "Values": list(configured or available)}])["Subnets"]
        subnets: dict[str, str] = {}
        for subnet in sorted(found, key=lambda s: s["SubnetId"]):
            subnets.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
        missing = [z for z in configured or [] if z not in subnets]
        if missing:
            raise WorkflowError(f"VPC {vpc['VpcId']} has no subnet in zone(s) {', '.join(missing)}")
        if not subnets:
            raise WorkflowError(f"VPC {vpc['VpcId']} has no subnet in any available zone "
                                f"({', '.join(available) or 'none'})")
        return vpc["VpcId"], subnets
