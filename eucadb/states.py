"""Service states, shared by the loop that publishes them and the services that obey them.

A neutral module: `services/` must not import `bootstrap/` (the services are mounted by the server,
they do not drive the loop), yet both speak of the same states. The loop writes them to the store
(`bootstrap/services.py`); every server, leader or follower, reads them through one cached gate.
"""
from __future__ import annotations

import enum
import threading
import time
from typing import Callable, Mapping


class ServiceState(str, enum.Enum):
    """Published in status and metrics: values never change once released."""

    DISABLED = "DISABLED"
    NOTREADY = "NOTREADY"
    ENABLING = "ENABLING"
    ENABLED = "ENABLED"
    DEGRADED = "DEGRADED"


STATE_NUMBER = {s: i for i, s in enumerate(ServiceState)}  # for the Prometheus gauge
GATE_SECONDS = 1.0   # how stale a gate's answer may be: one store read per second, not per request


class StateGate:
    """The state of one service as the store says, read at most once per `seconds`.

    Every API request asks; reading the store each time would put the local database on the hot
    path of every PutMetricData."""

    def __init__(self, read: Callable[[], Mapping[str, ServiceState]], name: str,
                 seconds: float = GATE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._read, self.name, self._seconds, self._clock = read, name, seconds, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._state = ServiceState.DISABLED

    def state(self) -> ServiceState:
        now = self._clock()
        with self._lock:
            if self._at is None or now - self._at >= self._seconds:
                self._state = self._read().get(self.name, ServiceState.DISABLED)
                self._at = now
            return self._state

    def enabled(self) -> bool:
        return self.state() is ServiceState.ENABLED
