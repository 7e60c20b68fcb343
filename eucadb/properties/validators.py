"""Cloud-backed checks: each CloudCheck maps to one function asking CloudFacts one question.

A check returns None when the value is fine, or the sentence that completes "… is not allowed: …".
Empty values (unset optional properties) are never sent to the cloud.
"""
from __future__ import annotations

from typing import Any, Callable

from eucadb.cloud.facts import CloudFacts
from eucadb.properties.registry import CloudCheck


def _image(facts: CloudFacts, value: str) -> str | None:
    image = facts.image(value)
    if image is None:
        return f"image {value} does not exist in the cloud"
    if image.get("State", "available") != "available":
        return f"image {value} is {image['State']}, not available"
    return None


def _instance_type(facts: CloudFacts, value: str) -> str | None:
    if facts.instance_type(value) is not None:
        return None
    known = facts.instance_types()   # only to suggest neighbours of a wrong value
    family = value.split(".")[0]
    close = sorted(k for k in known if k.startswith(family + "."))[:8]
    return f"the cloud offers no instance type {value}" + (f"; it has {', '.join(close)}" if close else "")


def _key_pair(facts: CloudFacts, value: str) -> str | None:
    return None if facts.key_pair(value) else f"key pair {value} does not exist in the cloud"


def _zones(facts: CloudFacts, value: list[str]) -> str | None:
    known = facts.zones()
    unknown = [z for z in value if z not in known]
    if unknown:
        return f"no such zone {', '.join(unknown)}; the cloud has {', '.join(known) or 'no zones'}"
    return None


def _volume(facts: CloudFacts, value: str) -> str | None:
    volume = facts.volume(value)
    if volume is None:
        return f"volume {value} does not exist in the cloud"
    if volume["State"] not in ("available", "in-use"):
        return f"volume {value} is {volume['State']}; it must be available"
    if volume["State"] == "in-use" and not any(
            t.get("Key") == "eucadb:deployment" for t in volume.get("Tags", [])):
        return f"volume {value} is attached to another instance; detach it first"
    return None


CHECKS: dict[CloudCheck, Callable[[CloudFacts, Any], str | None]] = {
    CloudCheck.IMAGE: _image,
    CloudCheck.INSTANCE_TYPE: _instance_type,
    CloudCheck.KEY_PAIR: _key_pair,
    CloudCheck.ZONES: _zones,
    CloudCheck.VOLUME: _volume,
}


def check(kind: CloudCheck, facts: CloudFacts, value: Any) -> str | None:
    if value in ("", [], None):
        return None
    return CHECKS[kind](facts, value)
