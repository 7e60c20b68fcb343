"""The endpoint the leader publishes: how followers know where the database is without the cloud.

Only the lease holder looks the instance up in the cloud; it writes the address its pools use here,
fenced in the same transaction, and clears it when it drains them. Every other `eucadb serve` reads
it each cycle and builds its pools from it, so the API tier scales out behind a load balancer while
exactly one process mutates the cloud.
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy.orm import Session

from eucadb.store import Store
from eucadb.store.models import PublishedEndpoint, utcnow

Fence = Callable[[Session], None]


def published_address(store: Store, deployment: str | None) -> str | None:
    if deployment is None:
        return None
    with store.session() as s:
        row = s.get(PublishedEndpoint, deployment)
        return row.address if row else None


def publish(store: Store, deployment: str, address: str, token: int, fence: Fence) -> None:
    with store.session() as s:
        fence(s)
        row = s.get(PublishedEndpoint, deployment)
        if row is None:
            s.add(PublishedEndpoint(deployment=deployment, address=address, token=token, published_at=utcnow()))
        elif (row.address, row.token) != (address, token):
            row.address, row.token, row.published_at = address, token, utcnow()


def withdraw(store: Store, deployment: str, fence: Fence) -> None:
    with store.session() as s:
        fence(s)
        row = s.get(PublishedEndpoint, deployment)
        if row is not None:
            s.delete(row)
