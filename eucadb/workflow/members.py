"""Replication members: their names, their slots and where they run (docs/architecture.md §13).

A deployment is a replication set of members 0..N. Member 0 keeps the names a single-instance
deployment always had (`eucadb-<dep>-db`, `eucadb-<dep>-data`), so an existing deployment keeps its
volume; member i ≥ 1 gets `-m<i>` suffixed names. Which member is the primary is recorded in the
local store (`store/members.py`), never implied by a name. Pure functions only: the steps and the
loop share them, and the unit tests call them directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eucadb.workflow.deployment import Names

MEMBER_TAG = "eucadb:member"       # on each member's volume, template and group: its index
RETIRED_TAG = "eucadb:retired"     # on the volume of a member that went (kept, never re-used as primary)
SLOT_PREFIX = "eucadb_member_"
MAX_MEMBERS = 6                    # a primary and at most 5 replicas: indexes 0..5


@dataclass(frozen=True)
class Member:
    deployment: str
    index: int

    @property
    def name(self) -> str:
        """The member's short name, shown in status and accepted by `switchover --to`."""
        return f"m{self.index}"

    @property
    def group(self) -> str:
        """Its autoscaling group and launch template (member 0: the historical name)."""
        base = Names(self.deployment).db
        return base if self.index == 0 else f"{base}-m{self.index}"

    @property
    def volume(self) -> str:
        base = Names(self.deployment).volume
        return base if self.index == 0 else f"{base}-m{self.index}"

    @property
    def slot(self) -> str:
        """Its physical replication slot on the primary (a plain identifier)."""
        return f"{SLOT_PREFIX}{self.index}"

    def tags(self, name: str) -> list[dict[str, str]]:
        return [*Names(self.deployment).tags(name), {"Key": MEMBER_TAG, "Value": str(self.index)}]

    def primary_tags(self, name: str) -> list[dict[str, str]]:
        """Tags of what the launch workflow makes for this member as the primary: member 0's are
        the single-instance ones, unchanged."""
        return Names(self.deployment).tags(name) if self.index == 0 else self.tags(name)


def member_of_slot(slot: str) -> int | None:
    """The member index a slot name belongs to (None: not one of eucadb's)."""
    rest = slot[len(SLOT_PREFIX):] if slot.startswith(SLOT_PREFIX) else ""
    return int(rest) if rest.isdigit() else None


def replica_indexes(primary: int, replicas: int) -> list[int]:
    """The indexes of the wanted replicas: the lowest ones that are not the primary."""
    out, i = [], 0
    while len(out) < replicas:
        if i != primary:
            out.append(i)
        i += 1
    return out


def place(primary_zone: str, zones: Sequence[str], indexes: Sequence[int]) -> dict[int, str]:
    """Zone of each replica: round-robin over the zones other than the primary's (multi-zone DR),
    or the primary's own when it is the only one."""
    others = [z for z in zones if z != primary_zone] or [primary_zone]
    return {index: others[n % len(others)] for n, index in enumerate(sorted(indexes))}
