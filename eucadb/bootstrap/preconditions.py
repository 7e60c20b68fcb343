"""Preconditions of a launch, as data: each is a name, a test on the snapshot and what to tell the
operator when it fails. `status` lists the unmet ones; the loop waits until there are none."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from eucadb.bootstrap.snapshot import Snapshot
from eucadb.properties.registry import WORKER


@dataclass(frozen=True)
class Precondition:
    name: str
    met: Callable[[Snapshot], bool]
    unmet_message: str


PRECONDITIONS: tuple[Precondition, ...] = (
    Precondition("cloud reachable", lambda s: s.cloud_error is None,
                 "the cloud is not reachable"),
    Precondition("image set", lambda s: bool(s.properties[WORKER + "image"]),
                 f"{WORKER}image not set (see `eucadb image install`)"),
    Precondition("instance type set", lambda s: bool(s.properties[WORKER + "instance_type"]),
                 f"{WORKER}instance_type not set"),
)


def unmet(snapshot: Snapshot) -> list[str]:
    messages = []
    for p in PRECONDITIONS:
        if not p.met(snapshot):
            detail = f" ({snapshot.cloud_error})" if p.name == "cloud reachable" else ""
            messages.append(p.unmet_message + detail)
    return messages
