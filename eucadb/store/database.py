"""Opening the store and bringing its schema to the current Alembic head."""
from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from eucadb.errors import DatabaseError
from eucadb.resources import alembic_scripts

log = logging.getLogger(__name__)

# A write guard run first inside a write's own transaction (the leader lease's `check`): it raises to
# refuse the write, and the transaction — the write with it — is rolled back.
Fence = Callable[[Session], None]


def unfenced(session: Session) -> None:
    """The fence of writes any process may make (admin actions, tests): none."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets `eucadb serve` and CLI commands share the file; busy_timeout turns lock waits into
    # short waits instead of immediate "database is locked" errors.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    """A handle on the local store: an engine, a session factory and the migration runner."""

    def __init__(self, url: str):
        self.url = url
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, future=True)
        self._joined = threading.local()   # the session of this thread's open transaction(), if any

    def migrate(self) -> None:
        """Upgrade the schema to head; safe to call on every start."""
        with alembic_scripts("eucadb.store", "migrations") as cfg:
            cfg.attributes["connection_engine"] = self.engine
            try:
                command.upgrade(cfg, "head")
            except OperationalError as exc:
                raise DatabaseError(f"local store {self.safe_url}: {exc.orig}") from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error. Inside this thread's
        `transaction()`, it is that transaction (committed or rolled back with it)."""
        joined = getattr(self._joined, "session", None)
        if joined is not None:
            yield joined
            return
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise DatabaseError(f"local store {self.safe_url}: {exc.orig}") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """Every `session()` this thread opens inside joins one transaction: several reads of
        different tables (the loop's snapshot) see the store at one moment, not a mix of before and
        after a concurrent change."""
        with self.session() as session:
            self._joined.session = session
            try:
                yield session
            finally:
                self._joined.session = None

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, migrate: bool = True) -> Store:
    store = Store(url)
    if migrate:
        store.migrate()
    return store
