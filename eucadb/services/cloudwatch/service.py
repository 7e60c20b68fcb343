"""What an operation handler works with: pools, the catalogue, access keys, the gate and a clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, ContextManager, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from eucadb.services.cloudwatch.catalogue import Catalogue
from eucadb.services.keys import AccessKeys


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
    catalogue: Catalogue = field(init=False)

    def __post_init__(self) -> None:
        self.catalogue = Catalogue(self.pools)
