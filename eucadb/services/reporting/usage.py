"""Usage over a time range from create/usage/delete events — a pure function, unit-tested alone.

Each resource's events, in time order, cut its life into segments; a segment runs from an event to the
next one with the attributes of the first (so a volume resized by a usage event is billed at each size
for the time it had it). A resource created before the range and still alive counts from the range
start; one deleted inside the range counts until the delete. Edge cases, decided here once:
  - usage without a prior create: the resource counts from that usage event (we learnt of it late);
  - delete without any prior create/usage: no start is known, so nothing is counted;
  - usage after a delete is stale and ignored; a create after a delete starts a new life;
  - events at the same instant apply in the order create, usage, delete.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, Iterable, Iterator, Mapping

from eucadb.services.reporting.events import (RESOURCE_TYPES, EventKind, ResourceType, UsageEvent,
                                              quantity_per_hour)

ORDER = {EventKind.CREATE: 0, EventKind.USAGE: 1, EventKind.DELETE: 2}
TYPE_ORDER = {name: i for i, name in enumerate(RESOURCE_TYPES)}
COLUMNS = ("account", "account_name", "resource_type", "item", "unit", "quantity")


@dataclass(frozen=True)
class UsageRow:
    account: str
    resource_type: str
    item: str            # instance type for instances, resource id for the others
    unit: str
    quantity: float
    account_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "account_name": self.account_name,
                "resource_type": self.resource_type, "item": self.item, "unit": self.unit,
                "quantity": round(self.quantity, 6)}


def _overlap_hours(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    seconds = (min(b, end) - max(a, start)).total_seconds()
    return max(seconds, 0.0) / 3600.0


def report_order(e: UsageEvent) -> tuple:
    """The order `stream_usage` needs: resource by resource, as the report lists them, each in time order
    (service.USAGE_SQL sorts the same way in the database)."""
    return (e.account, TYPE_ORDER[e.resource_type], e.resource_id, e.ts, ORDER[e.event])


def _segments(evs: Iterable[UsageEvent], end: datetime) -> Iterator[tuple[datetime, datetime, Mapping[str, Any]]]:
    """(since, until, attributes) of each stretch of one resource's life; events in time order."""
    since: datetime | None = None
    attrs: Mapping[str, Any] = {}
    deleted = False
    for e in evs:
        if e.event is EventKind.USAGE and deleted:
            continue                      # stale: the resource is gone
        if since is not None:
            yield since, e.ts, attrs
        deleted = e.event is EventKind.DELETE
        since, attrs = (None, {}) if deleted else (e.ts, e.attributes)
    if since is not None:
        yield since, end, attrs


def resource_usage(rtype: ResourceType, resource_id: str, evs: Iterable[UsageEvent], start: datetime,
                   end: datetime) -> dict[str, float]:
    """item → quantity for one resource (item: its id, or its attribute's value for types grouped by
    attribute, e.g. the instance type — which can change during its life)."""
    totals: dict[str, float] = {}
    for since, until, attrs in _segments(evs, end):
        hours = _overlap_hours(since, until, start, end)
        if hours > 0:
            item = str(attrs.get(rtype.attribute, "?")) if rtype.group_by_attribute else resource_id
            totals[item] = totals.get(item, 0.0) + hours * quantity_per_hour(rtype, attrs)
    return totals


def stream_usage(events: Iterable[UsageEvent], start: datetime, end: datetime,
                 names: Mapping[str, str] | None = None) -> Iterator[UsageRow]:
    """Report rows, in report order, from events in `report_order`.

    Holds one resource's events at a time, plus one total per attribute value for the types grouped by
    attribute (a handful of instance types), so a report over all time needs no more memory than a day's."""
    names = names or {}
    for (account, type_name), of_type in groupby(events, key=lambda e: (e.account, e.resource_type)):
        rtype = RESOURCE_TYPES[type_name]
        grouped: dict[str, float] = {}
        for resource_id, evs in groupby(of_type, key=lambda e: e.resource_id):
            for item, qty in resource_usage(rtype, resource_id, evs, start, end).items():
                if rtype.group_by_attribute:
                    grouped[item] = grouped.get(item, 0.0) + qty
                else:
                    yield UsageRow(account, type_name, item, rtype.unit, qty, names.get(account, ""))
        for item in sorted(grouped):
            yield UsageRow(account, type_name, item, rtype.unit, grouped[item], names.get(account, ""))


def compute_usage(events: Iterable[UsageEvent], start: datetime, end: datetime,
                  names: Mapping[str, str] | None = None) -> list[UsageRow]:
    """Rows of (account, type, item) → quantity in the type's unit for [start, end), events in any order."""
    return list(stream_usage(sorted(events, key=report_order), start, end, names))
