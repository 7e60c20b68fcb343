"""What an operation handler works with: pools, the catalogue, access keys, the gate and a clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from eucadb.retry import Retry
from eucadb.services.cloudwatch.catalogue import Catalogue
from eucadb.services.keys import AccessKeys


class Cloud(Protocol):
    """The slice of cloud.client.CloudClients alarm actions need: one narrow call."""

    configured: bool

    def call(self, service: str, operation: str, **params: Any) -> dict: ...


class Pools(Protocol):
    """The slice of pool.manager.PoolManager the service needs."""

    def engine(self, context: str) -> Engine: ...

    def session(self, context: str) -> ContextManager[Session]: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CloudWatch:
    pools: Pools
    keys: AccessKeys
    is_enabled: Callable[[], bool]
    clock: Callable[[], datetime] = utcnow
    region: str = "us-east-1"   # of the SigV4 credential scope and ARNs: `serve.region`
    account: str = "000000000000"
    cloud: Cloud | None = None                          # where alarm actions go; None: they fail
    is_leader: Callable[[], bool] = lambda: True        # only the leader evaluates and acts
    action_retry: Retry | None = None                   # None: actions.ACTION_RETRY
    catalogue: Catalogue = field(init=False)

    def __post_init__(self) -> None:
        self.catalogue = Catalogue(self.pools)
