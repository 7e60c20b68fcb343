"""Tags of alarms and dashboards (local table cw_tags), with AWS's limits.

Limits: at most 50 tags per resource, keys 1-128 and values 0-256 characters (model TagKey /
TagValue; "You can associate as many as 50 tags with a CloudWatch resource", TagResource docs), and
keys beginning with `aws:` are reserved for AWS (AWS tagging best practices).
"""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from eucadb.services.cloudwatch import limits
from eucadb.services.cloudwatch.errors import invalid
from eucadb.services.cloudwatch.tables import Tag

MAX_TAGS = 50


def check(tags: list[dict], where: str = "Tags") -> dict[str, str]:
    """Validated tags as key → value (a key given twice keeps its last value)."""
    out: dict[str, str] = {}
    for i, tag in enumerate(tags, 1):
        limits.require(tag, "Key")
        key, value = tag["Key"], tag.get("Value", "")
        limits.check_length(f"{where}.member.{i}.Key", key, 1, 128)
        limits.check_length(f"{where}.member.{i}.Value", value, 0, 256)
        if key.lower().startswith("aws:"):
            raise invalid(f"The tag key {key!r} is invalid: keys beginning with aws: are reserved for AWS.")
        out[key] = value
    if len(out) > MAX_TAGS:
        raise invalid(f"A resource can have at most {MAX_TAGS} tags; {len(out)} were given.")
    return out


def current(s: Session, account: str, kind: str, name: str) -> dict[str, str]:
    rows = s.scalars(select(Tag).where(Tag.account == account, Tag.resource_type == kind,
                                       Tag.resource_name == name).order_by(Tag.key))
    return {r.key: r.value for r in rows}


def put(s: Session, account: str, kind: str, name: str, new: dict[str, str]) -> None:
    """Add or replace tags; the resource's total stays within MAX_TAGS or nothing changes."""
    have = current(s, account, kind, name)
    if len(have.keys() | new.keys()) > MAX_TAGS:
        raise invalid(f"A resource can have at most {MAX_TAGS} tags; this request would give it "
                      f"{len(have.keys() | new.keys())}.")
    for key, value in new.items():
        s.merge(Tag(account=account, resource_type=kind, resource_name=name, key=key, value=value))


def remove(s: Session, account: str, kind: str, names: list[str], keys: list[str] | None = None) -> None:
    """Remove the given keys (all tags when keys is None) of the named resources."""
    stmt = delete(Tag).where(Tag.account == account, Tag.resource_type == kind, Tag.resource_name.in_(names))
    if keys is not None:
        stmt = stmt.where(Tag.key.in_(keys))
    s.execute(stmt)


def as_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]
