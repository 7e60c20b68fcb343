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
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Iterator, Mapping

import psycopg2
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session

from eucadb.errors import DatabaseError, ServiceUnavailable
from eucadb.pool.contexts import BY_NAME, REMOTE, Context, Location
from eucadb.pool.endpoint import Endpoint, probe
from eucadb.pool.watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSettings:
    """`timeout` is the pool_timeout property; requests wait at most `checkout_wait` of it, because a
    request queued behind an exhausted pool holds a server thread that probes may need (answer 503)."""

    size: int = 10
    max_overflow: int = 10
    timeout: int = 30
    statement_timeout_ms: int = 10_000
    lock_timeout_ms: int = 5_000
    idle_in_transaction_ms: int = 30_000
    connect_timeout: int = 3          # libpq's whole login; its minimum is 2
    checkout_wait: float = 1.0
    ping_seconds: float = 2.0         # a pooled connection must answer SELECT 1 this fast at checkout

    @property
    def pool_wait(self) -> float:
        return min(float(self.timeout), self.checkout_wait)

    @property
    def operation_seconds(self) -> float:
        """Client-side bound on one checkout: the server's own statement_timeout plus a margin, so a
        live server always answers first and the watchdog only ever acts on a frozen one."""
        return self.statement_timeout_ms / 1000 + 2.0

    @property
    def options(self) -> str:
        return (f"-c statement_timeout={self.statement_timeout_ms} -c lock_timeout={self.lock_timeout_ms}"
                f" -c idle_in_transaction_session_timeout={self.idle_in_transaction_ms}")


@dataclass(frozen=True)
class RemoteTarget:
    """Everything a remote engine depends on; a different target means new engines."""

    endpoint: Endpoint
    settings: PoolSettings
    settings_digest: str


@dataclass(frozen=True)
class ClusterFacts:
    initialised_at: datetime
    started_at: datetime
    boot_found: str = ""   # the boot program's `eucadb.cluster` setting: "reused" or "initialised"

    @property
    def resumed(self) -> bool:
        """This server's boot found a cluster already on the volume (a kept volume), as it reported."""
        return self.boot_found == "reused"

    def as_dict(self) -> dict:
        return {"initialised_at": self.initialised_at.isoformat(), "started_at": self.started_at.isoformat(),
                "resumed_from_kept_volume": self.resumed}


class ReadOnlyServer(DatabaseError):
    """A writer context connected to a server in recovery (a replica): refused."""


def _query_one(dbapi_conn, sql: str):
    """One value, outside any transaction: one left open would break SQLAlchemy's session setup."""
    prior, dbapi_conn.autocommit = dbapi_conn.autocommit, True
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        dbapi_conn.autocommit = prior


def _refuse_replica(dbapi_conn, _record) -> None:
    if _query_one(dbapi_conn, "SELECT pg_is_in_recovery()"):
        raise ReadOnlyServer("server is in recovery (read-only); writers need the primary")


def build_remote_engine(ctx: Context, target: RemoteTarget, user: str, password: str,
                        watchdog: Watchdog) -> Engine:
    """A pool whose every remote operation is bounded: the login by connect_timeout, the checkout
    ping by `ping_seconds`, and everything from checkout to checkin by `operation_seconds` (the
    watchdog), on top of the server-side statement, lock and idle-in-transaction timeouts.

    SQLAlchemy's own pre-ping runs before any checkout hook could arm a deadline, so the ping is done
    here instead (SQLAlchemy's documented custom-ping pattern: DisconnectionError means reconnect)."""
    settings = target.settings
    args = target.endpoint.connect_args(user, password, ctx.database, connect_timeout=settings.connect_timeout)
    args["options"] = settings.options
    engine = create_engine("postgresql+psycopg2://", connect_args=args, pool_pre_ping=False,
                           pool_size=settings.size, max_overflow=settings.max_overflow,
                           pool_timeout=settings.pool_wait, pool_recycle=1800)
    return install_bounds(engine, settings, watchdog)


def install_bounds(engine: Engine, settings: PoolSettings, watchdog: Watchdog) -> Engine:
    """The checkout ping, the replica refusal and the watchdog deadlines, on `engine`'s pool."""
    def on_connect(dbapi_conn, record) -> None:
        with watchdog.bounded(dbapi_conn, settings.operation_seconds):
            _refuse_replica(dbapi_conn, record)

    def on_checkout(dbapi_conn, _record, _proxy) -> None:
        try:
            with watchdog.bounded(dbapi_conn, settings.ping_seconds):
                _query_one(dbapi_conn, "SELECT 1")
        except psycopg2.Error as exc:
            raise DisconnectionError(f"checkout ping failed: {str(exc).strip()}") from None
        watchdog.arm(dbapi_conn, settings.operation_seconds)

    def on_release(dbapi_conn, *_args) -> None:
        if dbapi_conn is not None:
            watchdog.disarm(dbapi_conn)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "checkout", on_checkout)
    for name in ("checkin", "invalidate", "close"):
        event.listen(engine, name, on_release)
    return engine


def verify(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseError(f"verification failed: {exc.__cause__ or exc}") from None


def _close_on_return(_dbapi_conn, record) -> None:
    if record is not None:
        record.invalidate()   # closes the DBAPI connection: the old server sees its client leave


def retire(engine: Engine) -> None:
    """Close an engine that was swapped out: idle connections now, busy ones when they come back.

    `Engine.dispose()` alone closes only the idle ones; a connection checked out across the swap goes
    back to the old pool when its request finishes and would stay open on the old server until the
    garbage collector happens to run."""
    event.listen(engine.pool, "checkin", _close_on_return)
    engine.dispose()


class PoolManager:
    def __init__(self, local_engine: Engine):
        self._local = local_engine
        self._lock = threading.Lock()
        self._remote: dict[str, Engine] = {}
        self._target: RemoteTarget | None = None
        self._logins: dict[str, tuple[str, str]] = {}
        self.watchdog = Watchdog()

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
                fresh[ctx.name] = build_remote_engine(ctx, target, user, password, self.watchdog)
                verify(fresh[ctx.name])
        except (DatabaseError, SQLAlchemyError):
            for engine in fresh.values():
                engine.dispose()
            raise
        with self._lock:
            old, self._remote, self._target = self._remote, fresh, target
            self._logins = dict(logins)
        for engine in old.values():
            retire(engine)
        log.info("pools now point at %s:%s", target.endpoint.address, target.endpoint.port)

    def drain(self) -> None:
        """Forget the remote engines (services must already be disabled)."""
        with self._lock:
            old, self._remote, self._target = self._remote, {}, None
        for engine in old.values():
            retire(engine)
        cut = self.watchdog.sever_all()   # requests still waiting on the old server fail now
        if cut:
            log.info("drained: %d in-flight remote operations cut", cut)

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

    def cluster(self) -> "ClusterFacts | None":
        """When the remote cluster was initialised (initdb) and when its server started, or None.

        Its system identifier's high 32 bits are the initdb time (the cluster's identity); whether this
        boot found it on the volume is what the boot program reported in `eucadb.cluster`."""
        try:
            with self.session(REMOTE[0].name) as s:
                born, started, found = s.execute(text(
                    "SELECT system_identifier >> 32, pg_postmaster_start_time(), "
                    "coalesce(current_setting('eucadb.cluster', true), '') FROM pg_control_system()")).one()
        except (SQLAlchemyError, ServiceUnavailable):
            return None
        return ClusterFacts(datetime.fromtimestamp(born, timezone.utc), started.astimezone(timezone.utc), found)

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
