"""Engines per persistence context, built, verified, swapped and disposed at run time.

The flaw this replaces: pools built once at controller boot, so a new database endpoint needed a
restart. Here a new endpoint gets new engines that are built and verified first; only then does one
assignment under a lock swap them in. Sessions already checked out finish on the old engine, which is
then disposed. Services that ask for a context that is not ready get ServiceUnavailable.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from eucadb.errors import DatabaseError, ServiceUnavailable
from eucadb.pool.contexts import BY_NAME, REMOTE, Context, Location
from eucadb.pool.endpoint import Endpoint, probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 10
    timeout: int = 30
    statement_timeout_ms: int = 30_000


@dataclass(frozen=True)
class RemoteTarget:
    """Everything a remote engine depends on; a different target means new engines."""

    endpoint: Endpoint
    settings: PoolSettings
    settings_digest: str


class ReadOnlyServer(DatabaseError):
    """A writer context connected to a server in recovery (a replica): refused."""


def _refuse_replica(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT pg_is_in_recovery()")
        if cur.fetchone()[0]:
            raise ReadOnlyServer("server is in recovery (read-only); writers need the primary")
    finally:
        cur.close()


def build_remote_engine(ctx: Context, target: RemoteTarget, user: str, password: str) -> Engine:
    args = target.endpoint.connect_args(user, password, ctx.database)
    args["options"] = f"-c statement_timeout={target.settings.statement_timeout_ms}"
    engine = create_engine("postgresql+psycopg2://", connect_args=args, pool_pre_ping=True,
                           pool_size=target.settings.size, max_overflow=target.settings.max_overflow,
                           pool_timeout=target.settings.timeout, pool_recycle=1800)
    event.listen(engine, "connect", _refuse_replica)
    return engine


def verify(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseError(f"verification failed: {exc.__cause__ or exc}") from None


class PoolManager:
    def __init__(self, local_engine: Engine):
        self._local = local_engine
        self._lock = threading.Lock()
        self._remote: dict[str, Engine] = {}
        self._target: RemoteTarget | None = None
        self._logins: dict[str, tuple[str, str]] = {}

    @property
    def target(self) -> RemoteTarget | None:
        return self._target

    def ready(self, context: str) -> bool:
        return BY_NAME[context].location is Location.LOCAL or context in self._remote

    def swap(self, target: RemoteTarget, logins: Mapping[str, tuple[str, str]]) -> None:
        """Build and verify engines for every remote context, then swap them in at once.

        `logins` maps a context name to (user, password). On any failure nothing changes."""
        fresh: dict[str, Engine] = {}
        try:
            for ctx in REMOTE:
                user, password = logins[ctx.name]
                fresh[ctx.name] = build_remote_engine(ctx, target, user, password)
                verify(fresh[ctx.name])
        except (DatabaseError, SQLAlchemyError):
            for engine in fresh.values():
                engine.dispose()
            raise
        with self._lock:
            old, self._remote, self._target = self._remote, fresh, target
            self._logins = dict(logins)
        for engine in old.values():
            engine.dispose()   # checked-out connections close when returned
        log.info("pools now point at %s:%s", target.endpoint.address, target.endpoint.port)

    def drain(self) -> None:
        """Forget the remote engines (services must already be disabled)."""
        with self._lock:
            old, self._remote, self._target = self._remote, {}, None
        for engine in old.values():
            engine.dispose()

    def engine(self, context: str) -> Engine:
        ctx = BY_NAME[context]
        if ctx.location is Location.LOCAL:
            return self._local
        with self._lock:
            engine = self._remote.get(context)
        if engine is None:
            raise ServiceUnavailable(f"{ctx.service} is unavailable: its remote database is not ready")
        return engine

    @contextlib.contextmanager
    def session(self, context: str) -> Iterator[Session]:
        with Session(self.engine(context), future=True) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def stats(self) -> dict[str, dict]:
        with self._lock:
            engines = dict(self._remote)
        out = {}
        for name, engine in engines.items():
            pool = engine.pool
            out[name] = {"size": pool.size(), "checked_out": pool.checkedout(),
                         "overflow": pool.overflow(), "checked_in": pool.checkedin()}
        return out

    def check(self) -> str | None:
        """Health: None if every remote context accepts a fresh TLS login, else the first error.

        A fresh connection (bounded by connect_timeout) rather than a pooled one: a pooled socket to a
        frozen or vanished server can block far longer than a health check may take."""
        with self._lock:
            target, logins = self._target, dict(self._logins)
        if target is None:
            return "no remote pools"
        for ctx in REMOTE:
            user, password = logins[ctx.name]
            try:
                probe(target.endpoint, user, password, ctx.database)
            except DatabaseError as exc:
                return f"{ctx.name}: {exc}"
        return None
