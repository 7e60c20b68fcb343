"""The one retry primitive (docs/architecture.md §11): exponential backoff, full jitter, a cap and a deadline.

Used wherever a cloud or database call may fail transiently. botocore's own retry config handles
throttling inside a single boto3 call; this helper covers what it does not (eventual consistency,
a DB that is still starting, a whole multi-call operation).
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Tuple, Type, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class NotYet(Exception):
    """A condition being polled for (a volume available, a snapshot completed) is not there yet."""


class RetryTimeout(Exception):
    """Raised when the deadline passes; `last` is the last transient error seen."""

    def __init__(self, what: str, attempts: int, last: BaseException | None):
        super().__init__(f"{what}: gave up after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class Retry:
    deadline: float = 60.0          # seconds for all attempts together
    initial_delay: float = 0.2
    max_delay: float = 5.0
    multiplier: float = 2.0
    retry_on: Tuple[Type[BaseException], ...] = (Exception,)
    # Extra filter: an exception of a retry_on type is retried only if this returns True.
    is_transient: Callable[[BaseException], bool] = lambda exc: True
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Count the deadline from the first failure instead of from the call: for calls that are long
    # by nature (a workflow step waiting minutes for an instance), so a transient error late in
    # the call still gets its `deadline` of retries.
    from_first_failure: bool = False

    def call(self, fn: Callable[[], T], what: str = "operation") -> T:
        """Run `fn` until it succeeds, a non-transient error escapes, or the deadline passes."""
        start = None if self.from_first_failure else self.clock()
        delay = self.initial_delay
        attempts = 0
        while True:
            attempts += 1
            try:
                return fn()
            except self.retry_on as exc:  # noqa: PERF203 - the loop is the point
                if not self.is_transient(exc):
                    raise
                start = self.clock() if start is None else start
                remaining = self.deadline - (self.clock() - start)
                if remaining <= 0:
                    raise RetryTimeout(what, attempts, exc) from exc
                pause = min(random.uniform(0, delay), remaining)
                log.debug("%s failed (attempt %d: %s); retrying in %.2fs", what, attempts, exc, pause)
                self.sleep(pause)
                delay = min(delay * self.multiplier, self.max_delay)
