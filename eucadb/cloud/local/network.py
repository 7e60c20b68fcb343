"""The embedded cloud's network: one loopback VPC, one /24 subnet per zone, and no default VPC.

Moto starts with a default VPC (172.31.0.0/16) whose addresses are not on this machine; it is removed
so that every instance gets a loopback address from our VPC (or fails to launch, as in an AWS account
without a default VPC). Subnet i+1 belongs to the i-th zone: 127.80.1.0/24 is the first zone's.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from eucadb.cloud.client import CloudClients

VPC_TAG = "eucadb:cloud"


@dataclass(frozen=True)
class Network:
    vpc_id: str
    cidr: str
    subnets: dict[str, str]  # zone -> subnet id


def subnet_cidr(vpc_cidr: str, index: int) -> str:
    """The index-th (from 0) zone's /24: x.y.<index+1>.0/24."""
    base = ipaddress.ip_network(vpc_cidr)
    return str(ipaddress.ip_network((int(base.network_address) + ((index + 1) << 8), 24)))


def _zones(clients: CloudClients, wanted: str | None) -> list[str]:
    zones = sorted(z["ZoneName"] for z in clients.call("ec2", "describe_availability_zones")["AvailabilityZones"])
    if not wanted:
        return zones
    chosen = [z.strip() for z in wanted.split(",") if z.strip()]
    return [z for z in zones if z in chosen]


def _drop_default_vpc(clients: CloudClients) -> None:
    for vpc in clients.call("ec2", "describe_vpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]:
        subnets = clients.call("ec2", "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
        for subnet in subnets["Subnets"]:
            clients.call("ec2", "delete_subnet", SubnetId=subnet["SubnetId"])
        clients.call("ec2", "delete_vpc", VpcId=vpc["VpcId"])


def ensure_network(clients: CloudClients, vpc_cidr: str, zones: str | None) -> Network:
    """Idempotent: finds the VPC by tag and CIDR, each subnet by CIDR; creates what is missing."""
    _drop_default_vpc(clients)
    found = clients.call("ec2", "describe_vpcs", Filters=[
        {"Name": f"tag:{VPC_TAG}", "Values": ["local"]}, {"Name": "cidr", "Values": [vpc_cidr]}])["Vpcs"]
    if found:
        vpc_id = found[0]["VpcId"]
    else:
        vpc_id = clients.call("ec2", "create_vpc", CidrBlock=vpc_cidr, TagSpecifications=[{
            "ResourceType": "vpc", "Tags": [{"Key": VPC_TAG, "Value": "local"},
                                            {"Key": "Name", "Value": "eucadb-local"}]}])["Vpc"]["VpcId"]
    existing = {s["CidrBlock"]: s for s in clients.call("ec2", "describe_subnets", Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]}
    subnets: dict[str, str] = {}
    for index, zone in enumerate(_zones(clients, zones)):
        cidr = subnet_cidr(vpc_cidr, index)
        subnet = existing.get(cidr) or clients.call(
            "ec2", "create_subnet", VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": VPC_TAG, "Value": "local"}]}])["Subnet"]
        subnets[subnet["AvailabilityZone"]] = subnet["SubnetId"]
    return Network(vpc_id, vpc_cidr, subnets)
