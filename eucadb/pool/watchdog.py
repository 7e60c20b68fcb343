"""A client-side deadline for remote database operations.

psycopg2 has no client-side query timeout, and a frozen PostgreSQL (SIGSTOPped, or its host hung)
keeps accepting TCP: the kernel acknowledges every byte, so neither keepalives nor tcp_user_timeout
fire, and statement_timeout, which the frozen server itself enforces, never does. Measured: a query
on an open connection stays blocked until something else gives up. The watchdog is that something:
at the deadline it shuts the connection's socket down (shutdown(2), not close, so the descriptor is
never reused under libpq), libpq wakes with "server closed the connection", the caller gets an
OperationalError and SQLAlchemy discards the connection.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


class Watchdog:
    """Deadlines per DBAPI connection, enforced by one daemon thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._cond = threading.Condition()
        self._due: dict[Any, float] = {}
        self._thread: threading.Thread | None = None
        self.severed = 0

    def arm(self, conn: Any, seconds: float) -> None:
        """Sever `conn` unless disarmed within `seconds` (re-arming replaces the deadline)."""
        with self._cond:
            self._due[conn] = self._clock() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self, conn: Any) -> None:
        with self._cond:
            self._due.pop(conn, None)

    @contextlib.contextmanager
    def bounded(self, conn: Any, seconds: float) -> Iterator[None]:
        self.arm(conn, seconds)
        try:
            yield
        finally:
            self.disarm(conn)

    def sever_all(self) -> int:
        """Cut every armed connection now (their server is gone); returns how many."""
        with self._cond:
            due, self._due = self._due, {}
            for conn in due:
                self._sever(conn)
        return len(due)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = self._clock()
                for conn in [c for c, at in self._due.items() if at <= now]:
                    del self._due[conn]
                    self._sever(conn)   # under the lock: a disarmed connection is never touched
                self._cond.wait(min(self._due.values(), default=now + 60) - now)

    def _sever(self, conn: Any) -> None:
        if getattr(conn, "closed", 1):
            return
        try:
            fd = conn.fileno()
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as sock:   # a dup: ours to close
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError) as exc:   # already gone: nothing left to cut
            log.debug("watchdog: connection already closed (%s)", exc)
            return
        self.severed += 1
        log.warning("remote database operation passed its deadline; connection severed")
