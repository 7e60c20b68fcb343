"""The retry helper: retries transient errors with capped, jittered backoff until the deadline."""
import pytest

from eucadb.retry import Retry, RetryTimeout


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_succeeds_after_transient_failures():
    clock, calls = FakeClock(), []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "ok"

    retry = Retry(deadline=10, retry_on=(ConnectionError,), sleep=clock.sleep, clock=clock.clock)
    assert retry.call(flaky) == "ok"
    assert len(calls) == 3


def test_gives_up_at_deadline_with_last_error():
    clock = FakeClock()
    retry = Retry(deadline=5, initial_delay=1, max_delay=2, retry_on=(ConnectionError,),
                  sleep=clock.sleep, clock=clock.clock)

    def always():
        raise ConnectionError("down")

    with pytest.raises(RetryTimeout) as err:
        retry.call(always, "probe")
    assert isinstance(err.value.last, ConnectionError)
    assert clock.now <= 5.0 + 1e-9
    assert max(clock.sleeps) <= 2.0


def test_non_transient_errors_escape_at_once():
    calls = []

    def bad():
        calls.append(1)
        raise ValueError("bad input")

    retry = Retry(deadline=5, retry_on=(ConnectionError,))
    with pytest.raises(ValueError):
        retry.call(bad)
    filtered = Retry(deadline=5, retry_on=(OSError,), is_transient=lambda e: "again" in str(e))
    with pytest.raises(OSError):
        filtered.call(lambda: (_ for _ in ()).throw(OSError("fatal")))
    assert calls == [1]


def test_deadline_from_the_first_failure_gives_a_late_error_its_retries():
    """A call that ran 100 s (a step waiting for an instance) before a transient error: counted from
    the call, the 10 s deadline is long gone; counted from the failure, it is retried."""
    for from_first_failure, expected in ((False, RetryTimeout), (True, None)):
        clock, calls = FakeClock(), []

        def slow_then_flaky():
            calls.append(1)
            if len(calls) == 1:
                clock.now += 100
                raise ConnectionError("throttled")
            return "ok"

        retry = Retry(deadline=10, retry_on=(ConnectionError,), sleep=clock.sleep, clock=clock.clock,
                      from_first_failure=from_first_failure)
        if expected is RetryTimeout:
            with pytest.raises(RetryTimeout):
                retry.call(slow_then_flaky)
        else:
            assert retry.call(slow_then_flaky) == "ok" and len(calls) == 2
