"""Property value types: parse operator text into a typed value, or say exactly what is allowed.

Every `parse` raises `ValueError` whose message completes the sentence "expected …"; nothing else
escapes (the hypothesis tests hold us to that).
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from apscheduler.triggers.cron import CronTrigger

MAX_TEXT = 16 * 1024  # no property value is legitimately longer than this


class PropertyType:
    """Base: subclasses implement parse(); values are stored as JSON."""

    label = "value"

    def parse(self, raw: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def format(self, value: Any) -> str:
        return "" if value is None else str(value)

    def dump(self, value: Any) -> str:
        return json.dumps(value)

    def load(self, text: str) -> Any:
        return json.loads(text)


def _text(raw: str) -> str:
    if not isinstance(raw, str):
        raise ValueError("text")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"at most {MAX_TEXT} characters")
    if "\x00" in raw:
        raise ValueError("text without NUL characters")
    return raw.strip()


@dataclass(frozen=True)
class Bool(PropertyType):
    label = "true|false"
    TRUE = ("true", "yes", "on", "1")
    FALSE = ("false", "no", "off", "0")

    def parse(self, raw: str) -> bool:
        text = _text(raw).lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError("true or false")

    def format(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Int(PropertyType):
    minimum: int | None = None
    maximum: int | None = None

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"integer {self._range()}".strip()

    def _range(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}..{self.maximum}"
        if self.minimum is not None:
            return f">= {self.minimum}"
        if self.maximum is not None:
            return f"<= {self.maximum}"
        return ""

    def parse(self, raw: str) -> int:
        text = _text(raw)
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
            raise ValueError(f"an integer {self._range()}".rstrip())
        value = int(text)
        if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum):
            raise ValueError(f"an integer {self._range()}")
        return value


@dataclass(frozen=True)
class String(PropertyType):
    pattern: str | None = None        # full-match regex
    pattern_doc: str = "text"
    allow_empty: bool = True
    max_length: int = 255
    label: str = "text"

    def parse(self, raw: str) -> str:
        text = _text(raw)
        if not text:
            if self.allow_empty:
                return ""
            raise ValueError(f"a non-empty {self.pattern_doc}")
        if len(text) > self.max_length:
            raise ValueError(f"{self.pattern_doc} of at most {self.max_length} characters")
        if self.pattern and not re.fullmatch(self.pattern, text):
            raise ValueError(self.pattern_doc)
        return text


@dataclass(frozen=True)
class Enum(PropertyType):
    choices: Sequence[str] = ()

    @property
    def label(self) -> str:  # type: ignore[override]
        return "|".join(self.choices)

    def parse(self, raw: str) -> str:
        text = _text(raw)
        if text not in self.choices:
            raise ValueError("one of " + ", ".join(self.choices))
        return text


@dataclass(frozen=True)
class List(PropertyType):
    """Comma-separated items, each parsed by `item`; duplicates removed, order kept."""

    item: PropertyType = field(default_factory=String)
    max_items: int = 64

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"comma-separated list of {self.item.label}"

    def parse(self, raw: str) -> list:
        text = _text(raw)
        if not text:
            return []
        parts = [p.strip() for p in text.split(",")]
        if any(not p for p in parts):
            raise ValueError(f"{self.label} without empty items")
        if len(parts) > self.max_items:
            raise ValueError(f"at most {self.max_items} items")
        values: list = []
        for part in parts:
            try:
                value = self.item.parse(part)
            except ValueError as exc:
                raise ValueError(f"{exc} (item {part!r})") from None
            if value not in values:
                values.append(value)
        return values

    def format(self, value: Any) -> str:
        return ",".join(self.item.format(v) for v in (value or []))


@dataclass(frozen=True)
class Cidr(PropertyType):
    label = "IPv4/IPv6 CIDR such as 10.0.0.0/16"

    def parse(self, raw: str) -> str:
        text = _text(raw)
        if "/" not in text:
            raise ValueError("a CIDR with a prefix length, such as 10.0.0.0/16 or 192.0.2.7/32")
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            reason = str(exc).replace("'", "")
            raise ValueError(f"a valid CIDR such as 10.0.0.0/16 ({reason})") from None


@dataclass(frozen=True)
class Cron(PropertyType):
    """A crontab line (minute hour day month weekday, UTC), as APScheduler's CronTrigger reads it:
    the leader computes the fire times with that very trigger, so what is accepted here runs."""

    label = "cron expression such as '0 3 * * *' (UTC), or empty for none"

    def parse(self, raw: str) -> str:
        text = " ".join(_text(raw).split())
        if not text:
            return ""
        try:
            CronTrigger.from_crontab(text, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"a cron expression of 5 fields such as '0 3 * * *' ({exc})") from None
        return text


def CidrList() -> List:
    return List(item=Cidr())


@dataclass(frozen=True)
class CloudResource(PropertyType):
    """An identifier of a cloud resource; the shape is checked here, existence by the validator."""

    kind: str = "resource"
    pattern: str = r"[A-Za-z0-9][A-Za-z0-9._:/-]*"
    example: str = ""
    optional: bool = True

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{self.kind} id" + (f" such as {self.example}" if self.example else "")

    def parse(self, raw: str) -> str:
        text = _text(raw)
        if not text:
            if self.optional:
                return ""
            raise ValueError(f"a {self.label} (it cannot be empty)")
        if len(text) > 255 or not re.fullmatch(self.pattern, text):
            raise ValueError(f"a {self.label}")
        return text
