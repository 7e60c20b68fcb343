"""TagResource, UntagResource and ListTagsForResource for alarms and dashboards.

An ARN that is not an alarm or dashboard ARN is InvalidParameterValue; one that names no resource
of this account (or another partition, region or account) is ResourceNotFoundException 404, as the
model lists for all three operations.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from eucadb.services.cloudwatch import arns, limits, tags
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import invalid, resource_not_found
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.tables import Alarm, Dashboard


def _exists(s: Session, cw: CloudWatch, res: arns.Resource) -> bool:
    if res.kind == "alarm":
        return s.get(Alarm, (cw.account, res.name)) is not None
    return s.get(Dashboard, (cw.account, res.name)) is not None


def _resource(s: Session, cw: CloudWatch, arn: str) -> arns.Resource:
    limits.check_length("ResourceARN", arn, 1, 1024)
    named = arns.parse(arn)
    if named is None:
        raise invalid(f"The ARN {arn[:300]!r} is not a CloudWatch alarm or dashboard ARN "
                      "(arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME or arn:aws:cloudwatch::ACCOUNT:dashboard/NAME).")
    res = arns.owned(arn, cw.region, cw.account)
    if res is None or not _exists(s, cw, res):
        raise resource_not_found(named.kind, named.name, f"The {named.kind} {named.name[:300]} does not exist.")
    return res


def tag_resource(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "ResourceARN", "Tags")
    new = tags.check(p["Tags"])
    with cw.pools.session(LOCAL) as s:
        res = _resource(s, cw, p["ResourceARN"])
        tags.put(s, cw.account, res.kind, res.name, new)
    return {}


def untag_resource(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "ResourceARN", "TagKeys")
    keys = p["TagKeys"]
    for i, key in enumerate(keys, 1):
        limits.check_length(f"TagKeys.member.{i}", key, 1, 128)
    with cw.pools.session(LOCAL) as s:
        res = _resource(s, cw, p["ResourceARN"])
        tags.remove(s, cw.account, res.kind, [res.name], keys)
    return {}


def list_tags_for_resource(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "ResourceARN")
    with cw.pools.session(LOCAL) as s:
        res = _resource(s, cw, p["ResourceARN"])
        return {"Tags": tags.as_list(tags.current(s, cw.account, res.kind, res.name))}
