"""Alarm action ARNs: what each names, and PutMetricAlarm's check of them.

The forms are those of PutMetricAlarm's AlarmActions documentation (API reference):
  arn:aws:automate:REGION:ec2:stop | terminate | reboot | recover
  arn:aws:sns:REGION:ACCOUNT:TOPIC
  arn:aws:autoscaling:REGION:ACCOUNT:scalingPolicy:POLICY-ID:autoScalingGroupName/GROUP:policyName/POLICY
Lambda, Systems Manager (OpsItem, incident) and `recover` actions are AWS ones this endpoint cannot
carry out on a private cloud: PutMetricAlarm refuses them rather than store an alarm that would
never act. AWS's own wording is used where it is known: "Invalid arn syntax: X" for an ARN that does
not parse, "Invalid region R specified. Only S is supported." for an EC2 action of another region.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from eucadb.services.cloudwatch.errors import ApiError

ARN_RE = re.compile(r"arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                    r"(?P<account>[0-9]*):(?P<resource>.+)", re.S)
AUTOMATE_RE = re.compile(r"arn:aws[a-z-]*:automate:(?P<region>[a-z0-9-]+):ec2:(?P<verb>[a-z]+)")
POLICY_RE = re.compile(r"scalingPolicy:(?P<id>[0-9a-fA-F-]+):autoScalingGroupName/(?P<group>[^:]+):"
                       r"policyName/(?P<policy>.+)", re.S)
EC2_OPERATIONS = {"stop": "stop_instances", "terminate": "terminate_instances", "reboot": "reboot_instances"}
UNSUPPORTED_SERVICES = ("lambda", "ssm", "ssm-incidents", "swf")
MAX_ACTIONS = 5   # per state: the model's ResourceList max


@dataclass(frozen=True)
class Target:
    """What one action ARN does when the alarm enters the state it is listed for."""

    kind: str              # "autoscaling", "sns" or "ec2"
    arn: str
    region: str
    group: str = ""        # autoscaling: the group and the policy name
    policy: str = ""
    operation: str = ""    # ec2: stop_instances / terminate_instances / reboot_instances


def bad(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def parse(arn: str) -> Target:
    """The target of an action ARN; ApiError (ValidationError) when it is not one this endpoint runs."""
    if (a := AUTOMATE_RE.fullmatch(arn)) is not None:
        if a["verb"] in EC2_OPERATIONS:
            return Target("ec2", arn, a["region"], operation=EC2_OPERATIONS[a["verb"]])
        if a["verb"] == "recover":
            raise bad(f"Action {arn}: EC2 instance recovery is not supported by this endpoint "
                      f"(allowed: ec2:stop, ec2:terminate, ec2:reboot).")
        raise bad(f"Invalid arn syntax: {arn}")
    m = ARN_RE.fullmatch(arn)
    if m is None:
        raise bad(f"Invalid arn syntax: {arn}")
    service, region, resource = m["service"], m["region"], m["resource"]
    if service == "sns" and m["account"] and region and ":" not in resource:
        return Target("sns", arn, region)
    if service == "autoscaling" and (p := POLICY_RE.fullmatch(resource)) and region:
        return Target("autoscaling", arn, region, group=p["group"], policy=p["policy"])
    if service in UNSUPPORTED_SERVICES:
        raise bad(f"Action {arn}: {service} actions are not supported by this endpoint "
                  "(allowed: SNS topics, Auto Scaling policies, arn:aws:automate:REGION:ec2:stop|terminate|reboot).")
    raise bad(f"Invalid arn syntax: {arn}")


def check(p: dict, region: str) -> None:
    """PutMetricAlarm's checks of OKActions, AlarmActions and InsufficientDataActions."""
    for member in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        arns = p.get(member) or []
        if len(arns) > MAX_ACTIONS:
            raise ApiError("ValidationError", f"1 validation error detected: Value at '{member[0].lower()}"
                                              f"{member[1:]}' failed to satisfy constraint: Member must have "
                                              f"length less than or equal to {MAX_ACTIONS}")
        for arn in arns:
            target = parse(arn)
            if target.kind == "ec2":
                if target.region != region:
                    raise bad(f"Invalid region {target.region} specified. Only {region} is supported.")
                if not any(d.get("Name") == "InstanceId" for d in p.get("Dimensions") or ()):
                    raise bad(f"Action {arn}: EC2 actions need an alarm on a metric with an InstanceId dimension.")
