"""ARNs of the taggable resources, as AWS writes them.

Alarms are regional (arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>); dashboards are
global, so their ARN has an empty region (arn:<partition>:cloudwatch::<account>:dashboard/<name>),
per the ResourceARN documentation of TagResource in botocore's CloudWatch model. The partition
follows from the region as in AWS's partition table: cn-* is aws-cn, us-gov-* is aws-us-gov.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"), ("us-isob-", "aws-iso-b"))
ARN_RE = re.compile(r"arn:(?P<partition>[a-z-]+):cloudwatch:(?P<region>[^:]*):(?P<account>[0-9]*):"
                    r"(?:alarm:(?P<alarm>.+)|dashboard/(?P<dashboard>.+))", re.S)


def partition(region: str) -> str:
    # longest prefix first: us-isob- must not be read as us-iso-
    for prefix, name in sorted(PARTITIONS, key=lambda p: -len(p[0])):
        if region.startswith(prefix):
            return name
    return "aws"


def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:{partition(region)}:cloudwatch:{region}:{account}:alarm:{name}"


def dashboard_arn(region: str, account: str, name: str) -> str:
    return f"arn:{partition(region)}:cloudwatch::{account}:dashboard/{name}"


@dataclass(frozen=True)
class Resource:
    kind: str      # "alarm" or "dashboard"
    name: str


def parse(arn: str) -> Resource | None:
    """The resource an ARN names, or None when it is not an alarm or dashboard ARN at all."""
    m = ARN_RE.fullmatch(arn)
    if m is None:
        return None
    return Resource("alarm", m["alarm"]) if m["alarm"] is not None else Resource("dashboard", m["dashboard"])


def owned(arn: str, region: str, account: str) -> Resource | None:
    """The resource, if the ARN is exactly the one this service would write for it (right partition,
    region and account); None otherwise, which the caller answers as not found."""
    res = parse(arn)
    if res is None:
        return None
    expected = alarm_arn if res.kind == "alarm" else dashboard_arn
    return res if expected(region, account, res.name) == arn else None
