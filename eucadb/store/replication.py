"""The replication set's record: which member is the primary, and its generation."""
from __future__ import annotations

from dataclasses import dataclass

from eucadb.store import Fence, Store
from eucadb.store.models import ReplicationSet, utcnow


@dataclass(frozen=True)
class PrimaryRecord:
    member: int = 0
    generation: int = 1
    reason: str = "initial primary"


def primary_record(store: Store, deployment: str) -> PrimaryRecord:
    with store.session() as s:
        row = s.get(ReplicationSet, deployment)
        return PrimaryRecord(row.primary_member, row.generation, row.reason) if row else PrimaryRecord()


def record_primary(store: Store, deployment: str, member: int, reason: str, fence: Fence) -> PrimaryRecord:
    """Make `member` the primary (a new generation unless it already is); fenced by the lease."""
    with store.session() as s:
        fence(s)
        row = s.get(ReplicationSet, deployment)
        if row is None:
            row = ReplicationSet(deployment=deployment, primary_member=0, generation=1, reason="initial primary")
            s.add(row)
        if row.primary_member != member:
            row.primary_member, row.generation = member, row.generation + 1
            row.reason, row.changed_at = reason, utcnow()
        return PrimaryRecord(row.primary_member, row.generation, row.reason)
