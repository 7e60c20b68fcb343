"""The leader lease: only its holder mutates the cloud; every workflow write (progress, vault) checks the
fencing token.

Timing rule (as Patroni's): loop.interval + 2 × retry.timeout ≤ lease.ttl (checked in config.py), so a
leader renews at least once per TTL even when a cycle's calls run into their retry deadline; a
follower takes over only after the TTL has passed without renewal. The token increases by one every
time the holder changes, so a stale leader's writes are refused even if it wakes up late.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from eucadb.errors import FencingError
from eucadb.holders import holder_id, holder_is_dead
from eucadb.store import Store
from eucadb.store.models import Lease

LEADER = "leader"
# INSERT … ON CONFLICT DO NOTHING of each store dialect: a server that loses the race to create the
# lease row learns it from the row count, with its transaction intact (an IntegrityError would
# leave the session failed, and its commit would raise PendingRollbackError)
INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_if_absent(session: Session, row: dict) -> bool:
    """Insert a lease row unless one of that name exists (or is being inserted); True if inserted."""
    insert = INSERTS[session.get_bind().dialect.name]
    return session.execute(insert(Lease).values(**row).on_conflict_do_nothing()).rowcount == 1


@dataclass
class LeaderLease:
    store: Store
    ttl: float
    holder: str = ""
    name: str = LEADER
    clock: Callable[[], float] = time.time
    token: int | None = None

    def __post_init__(self) -> None:
        self.holder = self.holder or holder_id()

    def acquire(self) -> bool:
        """Take or renew the lease. True when this process holds it afterwards."""
        now = self.clock()
        with self.store.session() as s:
            row = s.get(Lease, self.name)
            if row is None:
                won = insert_if_absent(s, {"name": self.name, "holder": self.holder, "token": 1,
                                           "expires_at": now + self.ttl})
                self.token = 1 if won else None
                return won
            if row.holder == self.holder:
                result = s.execute(update(Lease).where(
                    Lease.name == self.name, Lease.holder == self.holder, Lease.token == row.token)
                    .values(expires_at=now + self.ttl))
                ok = result.rowcount == 1
            elif row.expires_at < now or holder_is_dead(row.holder):
                result = s.execute(update(Lease).where(
                    Lease.name == self.name, Lease.token == row.token)
                    .values(holder=self.holder, token=row.token + 1, expires_at=now + self.ttl))
                ok = result.rowcount == 1
            else:
                ok = False
            self.token = (row.token + (0 if row.holder == self.holder else 1)) if ok else None
            return ok

    def release(self) -> None:
        with self.store.session() as s:
            s.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
                      .values(expires_at=0.0))
        self.token = None

    def current(self) -> Lease | None:
        with self.store.session() as s:
            return s.get(Lease, self.name)

    def check(self, session: Session) -> None:
        """Fencing: raise unless this process still holds the lease with its token (same transaction)."""
        row = session.execute(select(Lease).where(Lease.name == self.name).with_for_update()).scalar_one_or_none()
        if (row is None or self.token is None or row.holder != self.holder or row.token != self.token
                or row.expires_at < self.clock()):
            raise FencingError(f"lease {self.name!r} is no longer held by {self.holder} "
                               f"(token {self.token}); refusing to write")
