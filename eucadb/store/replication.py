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


SWITCHOVER = "switchover:"   # installation_settings name prefix: an operator's pending request


def request_switchover(store: Store, deployment: str, to: int | None) -> None:
    """An admin's input to the leader, like `property set` (not fenced): switch the primary over."""
    import json
    from eucadb.store.models import Setting
    with store.session() as s:
        row = s.get(Setting, SWITCHOVER + deployment)
        value = json.dumps({"to": to, "requested_at": utcnow().isoformat()})
        if row is None:
            s.add(Setting(name=SWITCHOVER + deployment, value=value))
        else:
            row.value = value


def switchover_request(store: Store, deployment: str) -> dict | None:
    """The pending request ({"to": member index or None}), or None."""
    import json
    from eucadb.store.models import Setting
    with store.session() as s:
        row = s.get(Setting, SWITCHOVER + deployment)
        return json.loads(row.value) if row else None


def clear_switchover(store: Store, deployment: str, fence: Fence) -> None:
    from eucadb.store.models import Setting
    with store.session() as s:
        fence(s)
        row = s.get(Setting, SWITCHOVER + deployment)
        if row is not None:
            s.delete(row)
