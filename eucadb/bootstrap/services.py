"""Service states of the dependent services (docs/architecture.md §8), persisted so every process sees the same.

DISABLED → NOTREADY (preconditions unmet) → ENABLING → ENABLED; ENABLED → DEGRADED → DISABLED on failed
health checks; back to ENABLED on recovery. An admin-disabled service stays DISABLED until an admin
enables it: the loop never overrides that.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from eucadb.errors import UserError
from eucadb.pool.contexts import SERVICES
from eucadb.store import Store
from eucadb.states import STATE_NUMBER, ServiceState  # noqa: F401 - re-exported for the loop's users
from eucadb.store.models import ServiceRecord, utcnow


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState
    reason: str
    since: datetime | None
    admin_disabled_by: str | None = None
    admin_disabled_at: datetime | None = None

    @property
    def admin_disabled(self) -> bool:
        return self.admin_disabled_by is not None

    def as_dict(self) -> dict:
        return {"name": self.name, "state": self.state.value, "reason": self.reason,
                "since": self.since.isoformat() if self.since else None,
                "admin_disabled_by": self.admin_disabled_by,
                "admin_disabled_at": self.admin_disabled_at.isoformat() if self.admin_disabled_at else None}


class ServiceRegistry:
    def __init__(self, store: Store):
        self.store = store

    def all(self) -> dict[str, ServiceStatus]:
        with self.store.session() as s:
            rows = {r.name: r for r in s.scalars(select(ServiceRecord))}
        out = {}
        for name in SERVICES:
            r = rows.get(name)
            out[name] = (ServiceStatus(name, ServiceState(r.state), r.reason, r.since,
                                       r.admin_disabled_by, r.admin_disabled_at)
                         if r else ServiceStatus(name, ServiceState.DISABLED, "never enabled", None))
        return out

    def states(self) -> dict[str, ServiceState]:
        """Just the states: what a service's gate needs (see eucadb/states.py StateGate)."""
        return {name: status.state for name, status in self.all().items()}

    def set(self, name: str, state: ServiceState, reason: str) -> bool:
        """Record a state chosen by the loop; True when it changed. Admin-disabled stays disabled."""
        with self.store.session() as s:
            row = s.get(ServiceRecord, name)
            if row is None:
                row = ServiceRecord(name=name, state=ServiceState.DISABLED.value, reason="", since=utcnow())
                s.add(row)
            if row.admin_disabled_by and state is not ServiceState.DISABLED:
                return False
            if row.state == state.value and row.reason == reason:
                return False
            if row.state != state.value:
                row.since = utcnow()
            row.state, row.reason = state.value, reason
            return True

    def admin(self, name: str, enable: bool, user: str | None = None) -> ServiceStatus:
        if name not in SERVICES:
            raise UserError(f"unknown service {name!r}; services are {', '.join(SERVICES)}")
        who = user or getpass.getuser()
        with self.store.session() as s:
            row = s.get(ServiceRecord, name)
            if row is None:
                row = ServiceRecord(name=name, state=ServiceState.DISABLED.value, reason="", since=utcnow())
                s.add(row)
            if enable:
                row.admin_disabled_by = row.admin_disabled_at = None
                if row.state == ServiceState.DISABLED.value:
                    row.state, row.reason, row.since = (ServiceState.NOTREADY.value,
                                                        f"enabled by {who}; waiting for the loop", utcnow())
            else:
                row.admin_disabled_by, row.admin_disabled_at = who, utcnow()
                row.state, row.reason, row.since = ServiceState.DISABLED.value, f"disabled by {who}", utcnow()
        return self.all()[name]
