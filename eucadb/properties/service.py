"""Reading and changing properties: all-or-nothing, validated, and recorded in history.

`set_many` parses every assignment and asks the cloud about every value before it writes anything, then
writes all values and their history rows in one transaction — one bad value and nothing changes.
"""
from __future__ import annotations

import difflib
import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import select

from eucadb.cloud.facts import CloudFacts
from eucadb.errors import CloudError, UserError
from eucadb.properties import validators
from eucadb.properties.registry import BY_NAME, MASK, PROPERTIES, OnChange, Property
from eucadb.store import Store
from eucadb.store.models import PropertyChange, PropertyValue, utcnow
from eucadb.store.secretbox import SecretBox


@dataclass(frozen=True)
class PropertyView:
    """What `property list/get` shows. `value` is already masked for secrets."""

    name: str
    value: str
    default: str
    is_default: bool
    description: str
    type: str
    read_only: bool
    secret: bool
    on_change: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Change:
    name: str
    old: str
    new: str
    on_change: OnChange


@dataclass(frozen=True)
class HistoryEntry:
    name: str
    old: str | None
    new: str | None
    changed_at: datetime
    changed_by: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new,
                "changed_at": self.changed_at.isoformat(), "changed_by": self.changed_by}


def lookup(name: str) -> Property:
    """The property called `name`, or a UserError listing the closest names."""
    prop = BY_NAME.get(name)
    if prop:
        return prop
    close = difflib.get_close_matches(name, BY_NAME, n=3, cutoff=0.6)
    if not close:
        tail = name.rsplit(".", 1)[-1]
        close = [p.name for p in PROPERTIES if tail and (tail in p.short_name or p.short_name in tail)][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `eucadb property list`"
    raise UserError(f"unknown property {name!r}{hint}")


def _split(assignment: str) -> tuple[str, str]:
    name, sep, value = assignment.partition("=")
    if not sep or not name.strip():
        raise UserError(f"{assignment!r} is not NAME=VALUE")
    return name.strip(), value


class PropertyService:
    def __init__(self, store: Store, facts: CloudFacts | None, secrets: SecretBox,
                 user: str | None = None):
        self.store = store
        self.facts = facts
        self.secrets = secrets
        self.user = user or getpass.getuser()

    # --- reading ---------------------------------------------------------------------------
    def _stored(self, names: Iterable[str] | None = None) -> dict[str, PropertyValue]:
        with self.store.session() as s:
            query = select(PropertyValue)
            if names is not None:
                query = query.where(PropertyValue.name.in_(list(names)))
            return {row.name: row for row in s.scalars(query)}

    def _decode(self, prop: Property, row: PropertyValue | None) -> Any:
        if row is None:
            return prop.default
        text = self.secrets.open(row.value, prop.name) if prop.secret else row.value
        return prop.type.load(text)

    def values(self) -> dict[str, Any]:
        """Typed values of every property (secrets in clear: for eucadb's own use, never printed)."""
        rows = self._stored()
        return {p.name: self._decode(p, rows.get(p.name)) for p in PROPERTIES}

    def value(self, name: str) -> Any:
        prop = lookup(name)
        return self._decode(prop, self._stored([name]).get(name))

    def _view(self, prop: Property, row: PropertyValue | None) -> PropertyView:
        shown = prop.type.format(self._decode(prop, row))
        if prop.secret and shown:
            shown = MASK
        return PropertyView(prop.name, shown, prop.type.format(prop.default), row is None,
                            prop.description, prop.type.label, prop.read_only, prop.secret,
                            prop.on_change.value)

    def list(self, prefix: str = "") -> list[PropertyView]:
        rows = self._stored()
        matching = [p for p in PROPERTIES if p.name.startswith(prefix)]
        if prefix and not matching:
            raise UserError(f"no property starts with {prefix!r}; try `eucadb property list`")
        return [self._view(p, rows.get(p.name)) for p in matching]

    def get(self, name: str) -> PropertyView:
        prop = lookup(name)
        return self._view(prop, self._stored([name]).get(name))

    def history(self, name: str | None = None) -> list[HistoryEntry]:
        if name:
            lookup(name)
        with self.store.session() as s:
            query = select(PropertyChange).order_by(PropertyChange.id)
            if name:
                query = query.where(PropertyChange.name == name)
            return [HistoryEntry(r.name, r.old_value, r.new_value, r.changed_at, r.changed_by)
                    for r in s.scalars(query)]

    # --- changing ----------------------------------------------------------------------------
    def _parse(self, name: str, raw: str, allow_read_only: bool) -> tuple[Property, Any]:
        prop = lookup(name)
        if prop.read_only and not allow_read_only:
            raise UserError(f"{name} is read-only: eucadb computes it")
        try:
            return prop, prop.type.parse(raw)
        except ValueError as exc:
            shown = MASK if prop.secret else raw
            raise UserError(f"{name}={shown!r} is not allowed: expected {exc}") from None

    def _cloud_check(self, prop: Property, value: Any) -> None:
        if prop.cloud_check is None or value in ("", [], None):
            return
        if self.facts is None:
            raise UserError(f"cannot check {prop.name} against the cloud: no cloud is configured "
                            "(run `eucadb cloud up` or set cloud.endpoint_url)")
        try:
            problem = validators.check(prop.cloud_check, self.facts, value)
        except CloudError as exc:
            raise UserError(f"cannot check {prop.name} against the cloud: {exc}") from None
        if problem:
            raise UserError(f"{prop.name}={prop.type.format(value)!r} is not allowed: {problem}")

    def set_many(self, assignments: Sequence[str]) -> list[Change]:
        parsed: dict[str, tuple[Property, Any]] = {}
        for assignment in assignments:
            name, raw = _split(assignment)
            if name in parsed:
                raise UserError(f"{name} is given twice")
            parsed[name] = self._parse(name, raw, allow_read_only=False)
        for prop, value in parsed.values():
            self._cloud_check(prop, value)
        return self._write({n: v for n, (_, v) in parsed.items()})

    def reset(self, name: str) -> list[Change]:
        prop = lookup(name)
        if prop.read_only:
            raise UserError(f"{name} is read-only: eucadb computes it")
        return self._write({name: prop.default})

    def set_computed(self, values: dict[str, Any]) -> list[Change]:
        """Written by eucadb itself (the live endpoint); bypasses the read-only flag, not the types."""
        for name in values:
            lookup(name)
        return self._write(values, user="eucadb")

    def _write(self, values: dict[str, Any], user: str | None = None) -> list[Change]:
        who = user or self.user
        changes: list[Change] = []
        with self.store.session() as s:
            for name, value in values.items():
                prop = BY_NAME[name]
                row = s.get(PropertyValue, name)
                old = self._decode(prop, row)
                if old == value:
                    continue
                text = prop.type.dump(value)
                if value == prop.default:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(PropertyValue(name=name, value=self._seal(prop, text), updated_by=who))
                else:
                    row.value, row.updated_at, row.updated_by = self._seal(prop, text), utcnow(), who
                old_shown, new_shown = self._shown(prop, old), self._shown(prop, value)
                s.add(PropertyChange(name=name, old_value=old_shown, new_value=new_shown,
                                     changed_by=who))
                changes.append(Change(name, old_shown, new_shown, prop.on_change))
        return changes

    def _seal(self, prop: Property, text: str) -> str:
        return self.secrets.seal(text, prop.name) if prop.secret else text

    @staticmethod
    def _shown(prop: Property, value: Any) -> str:
        text = prop.type.format(value)
        return MASK if prop.secret and text else text
