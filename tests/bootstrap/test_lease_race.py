"""Servers starting at once on a shared store: exactly one of them becomes leader, none crashes.

The first acquire of a lease inserts its row; with several processes inserting together, the
losers must see "not the leader", not a failed transaction (PendingRollbackError on PostgreSQL).
"""
from __future__ import annotations

import threading

from eucadb.bootstrap.lease import LeaderLease

SERVERS = 6
ROUNDS = 25


def start_together(store, name: str) -> list[object]:
    """SERVERS threads acquire lease `name` (absent so far) at the same moment; their outcomes."""
    barrier = threading.Barrier(SERVERS)
    outcomes: list[object] = [None] * SERVERS

    def server(i: int) -> None:
        lease = LeaderLease(store, ttl=30, holder=f"server-{i}", name=name)
        barrier.wait()
        try:
            outcomes[i] = lease.acquire()
        except Exception as exc:  # the outcome under test: reported, not swallowed
            outcomes[i] = exc

    threads = [threading.Thread(target=server, args=(i,)) for i in range(SERVERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_servers_starting_at_once_elect_exactly_one_leader(store):
    for round_ in range(ROUNDS):
        name = f"leader-{round_}"
        outcomes = start_together(store, name)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert not errors, f"round {round_}: {errors[0]!r}"
        assert outcomes.count(True) == 1, f"round {round_}: {outcomes}"
        holder = LeaderLease(store, ttl=30, name=name).current()
        assert holder.holder == f"server-{outcomes.index(True)}" and holder.token == 1
