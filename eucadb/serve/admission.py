"""How many requests the service APIs may have in flight at once.

The server has a fixed number of worker threads. A request to a database that has frozen holds its
thread until the pool's watchdog cuts it; without a limit, enough of them take every thread and
/healthz, /readyz and /status stop answering. The APIs get all threads but `reserved`; a request over
the limit is answered 503 at once instead of queueing behind the blocked ones.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator


class Admission:
    def __init__(self, slots: int | None):
        self.slots = slots
        self._sem = threading.BoundedSemaphore(slots) if slots else None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.shed = 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[bool]:
        """Yields True when admitted (the slot is held until the block ends), False when full."""
        if self._sem is None:
            yield True
            return
        if not self._sem.acquire(blocking=False):
            with self._lock:
                self.shed += 1
            yield False
            return
        with self._lock:
            self.in_flight += 1
        try:
            yield True
        finally:
            with self._lock:
                self.in_flight -= 1
            self._sem.release()
