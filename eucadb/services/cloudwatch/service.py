"""What an operation handler works with: pools, the catalogue, access keys, the gate, a clock, and
the account it acts for.

Tenancy: the shared service object knows no account. Each request (and each alarm the evaluator
looks at) works through `for_account(account)`, a view whose `account` and catalogue are bound to
that one account, so a handler cannot read or write another account's resources by forgetting a
filter: the catalogue of the shared object refuses to be used at all.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    account: str = ""           # the account a view acts for ("" on the shared service: none)
    catalogue: Catalogue | None = None   # bound to `account` in a view; made here when not given
    cloud: Cloud | None = None                          # where alarm actions go; None: they fail
    is_leader: Callable[[], bool] = lambda: True        # only the leader evaluates and acts
    action_retry: Retry | None = None                   # None: actions.ACTION_RETRY

    def __post_init__(self) -> None:
        if self.catalogue is None:
            self.catalogue = Catalogue(self.pools)

    def for_account(self, account: str) -> "CloudWatch":
        """This service as `account` sees it: every resource read or written is that account's."""
        return replace(self, account=account, catalogue=self.catalogue.scoped(account))

    def legacy_account(self) -> bool:
        """Whether this view's account owns what was stored before tenancy: the installation's
        default account (keys.default_account, store migration 0008), see docs/cloudwatch.md."""
        return self.account == self.keys.default_account()
