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

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from eucadb.services.reporting.events import RESOURCE_TYPES, EventKind, UsageEvent, quantity_per_hour

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


def compute_usage(events: Iterable[UsageEvent], start: datetime, end: datetime,
                  names: Mapping[str, str] | None = None) -> list[UsageRow]:
    """Rows of (account, type, item) → quantity in the type's unit for [start, end)."""
    by_resource: dict[tuple[str, str, str], list[UsageEvent]] = defaultdict(list)
    for e in events:
        by_resource[(e.account, e.resource_type, e.resource_id)].append(e)
    totals: dict[tuple[str, str, str], float] = {}

    def bill(key: tuple[str, str, str], since: datetime, until: datetime, attrs: Mapping[str, Any]) -> None:
        hours = _overlap_hours(since, until, start, end)
        if hours <= 0:
            return
        rtype = RESOURCE_TYPES[key[1]]
        item = str(attrs.get(rtype.attribute, "?")) if rtype.group_by_attribute else key[2]
        row = (key[0], key[1], item)
        totals[row] = totals.get(row, 0.0) + hours * quantity_per_hour(rtype, attrs)

    for key, evs in by_resource.items():
        evs.sort(key=lambda e: (e.ts, ORDER[e.event]))
        since: datetime | None = None
        attrs: Mapping[str, Any] = {}
        deleted = False
        for e in evs:
            if e.event is EventKind.USAGE and deleted:
                continue                      # stale: the resource is gone
            if since is not None:
                bill(key, since, e.ts, attrs)
            deleted = e.event is EventKind.DELETE
            since, attrs = (None, {}) if deleted else (e.ts, e.attributes)
        if since is not None:
            bill(key, since, end, attrs)
    names = names or {}
    rows = [UsageRow(acct, rtype, item, RESOURCE_TYPES[rtype].unit, qty, names.get(acct, ""))
            for (acct, rtype, item), qty in totals.items()]
    rows.sort(key=lambda r: (r.account, TYPE_ORDER[r.resource_type], r.item))
    return rows

