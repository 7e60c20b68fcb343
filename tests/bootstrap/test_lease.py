"""Leader lease: one holder at a time, takeover after expiry, fencing token refuses stale writers."""
import pytest

from eucadb.bootstrap.lease import LeaderLease
from eucadb.errors import FencingError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_single_holder_takeover_and_fencing(store):
    clock = Clock()
    a = LeaderLease(store, ttl=10, holder="a", clock=clock)
    b = LeaderLease(store, ttl=10, holder="b", clock=clock)
    assert a.acquire() and a.token == 1
    assert not b.acquire()
    clock.now += 5
    assert a.acquire() and a.token == 1       # renewal keeps the token
    clock.now += 11                           # a stops renewing: lease expires
    assert b.acquire() and b.token == 2
    with store.session() as s:
        b.check(s)
        with pytest.raises(FencingError):
            a.check(s)                        # the stale leader's writes are refused
    assert not a.acquire()
    b.release()
    assert a.acquire() and a.token == 3


def test_lease_of_a_dead_local_process_is_taken_at_once(store):
    import socket
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = LeaderLease(store, ttl=600, holder=f"{socket.gethostname()}:{proc.pid}:x")
    assert dead.acquire()
    other_host = LeaderLease(store, ttl=600, holder="elsewhere:1:y")
    me = LeaderLease(store, ttl=600)
    assert me.acquire() and me.token == 2          # the dead holder lost it immediately
    assert not other_host.acquire()                 # a live holder keeps it until the TTL
