"""Usage events as data: which resource types exist, what each event carries, and validation.

Other components (the cloud, the bootstrapper, scripts) send these events over HTTP or the Python API,
so every message here names the field, the value and what is allowed: a caller must be able to fix its
request from the error alone. Adding a resource type means adding one entry to RESOURCE_TYPES.
"""
from __future__ import annotations

import enum
import ipaddress
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from eucadb.errors import UserError

MAX_EVENTS = 10_000          # per request / per record() call: one COPY, bounded memory
MAX_TEXT = 256               # account and resource ids


class InvalidEvent(UserError):
    """An event (or a batch) does not follow the event model."""


class EventKind(str, enum.Enum):
    """Published in the remote table: values never change once released."""

    CREATE = "create"
    USAGE = "usage"      # a periodic "still there, with these attributes" (e.g. a volume resize)
    DELETE = "delete"


def _printable(value: str) -> bool:
    """No control characters (PostgreSQL text/jsonb refuse NUL) and valid UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or c == "\x7f" for c in value)


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidEvent(f"attribute {name}={value!r} must be an integer from 0 to 2**63-1")
    return value


def _ip(name: str, value: Any) -> str:
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise InvalidEvent(f"attribute {name}={value!r} must be an IPv4 or IPv6 address") from None


def _short_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or not _printable(value):
        raise InvalidEvent(f"attribute {name}={value!r} must be a non-empty string of at most 64 characters")
    return value


@dataclass(frozen=True)
class ResourceType:
    """One billable kind of resource and how its usage is metered.

    `attribute` must accompany create/usage events; the metered quantity per hour is 1 (weight None)
    or the attribute scaled by `scale`; rows are grouped by the attribute's value or the resource id."""

    name: str
    attribute: str
    check: Callable[[str, Any], Any]
    unit: str
    group_by_attribute: bool = False
    weight: bool = False
    scale: float = 1.0


RESOURCE_TYPES: Mapping[str, ResourceType] = {t.name: t for t in (
    ResourceType("instance", "instance_type", _short_text, "instance-hours", group_by_attribute=True),
    ResourceType("volume", "size_gib", _non_negative_int, "GiB-hours", weight=True),
    ResourceType("snapshot", "size_gib", _non_negative_int, "GiB-hours", weight=True),
    ResourceType("address", "ip", _ip, "address-hours"),
    ResourceType("bucket", "bytes", _non_negative_int, "GiB-hours", weight=True, scale=1 / 2**30),
)}
FIELDS = ("ts", "account", "resource_type", "resource_id", "event", "attributes")


@dataclass(frozen=True)
class UsageEvent:
    ts: datetime
    account: str
    resource_type: str
    resource_id: str
    event: EventKind
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.ts.isoformat(), "account": self.account, "resource_type": self.resource_type,
                "resource_id": self.resource_id, "event": self.event.value, "attributes": dict(self.attributes)}


def parse_time(value: Any, name: str = "ts") -> datetime:
    """An ISO 8601 time with an explicit offset ('Z' allowed); naive times are refused, not guessed."""
    if not isinstance(value, str) or not _printable(value):   # fromisoformat() ignores a trailing NUL
        raise InvalidEvent(f"{name}={value!r} must be an ISO 8601 string such as 2026-01-31T12:00:00Z")
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"{name}={value!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z") from None
    if ts.tzinfo is None:
        raise InvalidEvent(f"{name}={value!r} has no timezone; add Z or an offset such as +00:00")
    try:
        utc = ts.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not 1970 <= utc.year <= 9998:
        raise InvalidEvent(f"{name}={value!r} is out of range (years 1970..9998)")
    return utc


def check_text(name: str, value: Any) -> str:
    """An account or resource id: what the remote text columns can hold and a report can show."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{name} is required and must be a non-empty string (got {value!r})")
    if len(value) > MAX_TEXT or not _printable(value):
        raise InvalidEvent(f"{name}={value[:40]!r} must be at most {MAX_TEXT} printable characters")
    return value


def _names(names: list[str]) -> str:
    """Caller-chosen names, quoted and bounded so a message stays one readable line."""
    return ", ".join(repr(n[:40]) for n in names[:5]) + (", …" if len(names) > 5 else "")


def parse_event(doc: Any) -> UsageEvent:
    """One JSON object → a UsageEvent, or InvalidEvent naming the first problem."""
    if not isinstance(doc, Mapping):
        raise InvalidEvent(f"an event must be a JSON object with fields {', '.join(FIELDS)}")
    unknown = sorted(set(map(str, doc)) - set(FIELDS))
    if unknown:
        raise InvalidEvent(f"unknown field(s) {_names(unknown)}; allowed: {', '.join(FIELDS)}")
    kind_name = doc.get("event")
    try:
        kind = EventKind(kind_name)
    except ValueError:
        raise InvalidEvent(f"event={kind_name!r} is not one of "
                           f"{', '.join(k.value for k in EventKind)}") from None
    rtype_name = doc.get("resource_type")
    rtype = RESOURCE_TYPES.get(rtype_name) if isinstance(rtype_name, str) else None
    if rtype is None:
        raise InvalidEvent(f"resource_type={rtype_name!r} is not one of {', '.join(RESOURCE_TYPES)}")
    attributes = doc.get("attributes", {})
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise InvalidEvent(f"attributes must be a JSON object (got {type(attributes).__name__})")
    extra = sorted(set(map(str, attributes)) - {rtype.attribute})
    if extra:
        raise InvalidEvent(f"unknown attribute(s) {_names(extra)} for {rtype.name}; "
                           f"allowed: {rtype.attribute}")
    if rtype.attribute in attributes:
        attributes = {rtype.attribute: rtype.check(rtype.attribute, attributes[rtype.attribute])}
    elif kind is not EventKind.DELETE:
        raise InvalidEvent(f"{kind.value} of a {rtype.name} needs attribute {rtype.attribute}")
    return UsageEvent(parse_time(doc.get("ts")), check_text("account", doc.get("account")), rtype.name,
                      check_text("resource_id", doc.get("resource_id")), kind, attributes)


def parse_events(docs: Any) -> list[UsageEvent]:
    """A JSON list of events → UsageEvents; the error says which element is wrong."""
    if isinstance(docs, Mapping):
        docs = [docs]
    if not isinstance(docs, Sequence) or isinstance(docs, (str, bytes)):
        raise InvalidEvent("the body must be a JSON list of event objects")
    if len(docs) > MAX_EVENTS:
        raise InvalidEvent(f"{len(docs)} events in one batch; at most {MAX_EVENTS} are allowed")
    out = []
    for i, doc in enumerate(docs):
        try:
            out.append(doc if isinstance(doc, UsageEvent) else parse_event(doc))
        except InvalidEvent as exc:
            raise InvalidEvent(f"event {i}: {exc}") from None
    return out


def quantity_per_hour(rtype: ResourceType, attributes: Mapping[str, Any]) -> float:
    """How much of the type's unit one hour of this resource is worth (1, or its size)."""
    if not rtype.weight:
        return 1.0
    value = float(attributes.get(rtype.attribute, 0))
    return value * rtype.scale if math.isfinite(value) else 0.0
