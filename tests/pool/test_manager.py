"""PoolManager against real TLS PostgreSQL servers: a swap is all-or-nothing, a successful one lets go
of the old server, drain makes remote contexts unavailable, writers refuse a replica, check() names
what is broken. Only the public API is used (swap, drain, engine, session, ready, check, target)."""
from __future__ import annotations

import time
from typing import Callable

import psycopg2
import pytest
from sqlalchemy import create_engine, text

from pg import PgServer, free_port, launch
from tlspg import LOGINS, target

from eucadb.errors import DatabaseError, ServiceUnavailable
from eucadb.pool.contexts import CONTEXTS, REMOTE, Location
from eucadb.pool.endpoint import probe
from eucadb.pool.manager import PoolManager

LOCAL = tuple(c for c in CONTEXTS if c.location is Location.LOCAL)


@pytest.fixture
def pools(tmp_path):
    local = create_engine(f"sqlite:///{tmp_path / 'local.db'}")
    manager = PoolManager(local)
    yield manager
    manager.drain()
    local.dispose()


def served_by(pools: PoolManager, context: str) -> tuple[int, bool, int]:
    """(server port, TLS in use, backend pid) of a session of `context`."""
    with pools.session(context) as s:
        row = s.execute(text("SELECT inet_server_port(), ssl, pg_backend_pid() FROM pg_stat_ssl "
                             "WHERE pid = pg_backend_pid()")).one()
    return row[0], row[1], row[2]


def admin(server: PgServer, sql: str) -> list[tuple]:
    conn = psycopg2.connect(server.socket_dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def eucadb_backends(server: PgServer) -> set[int]:
    """Pids of the backends serving eucadb's connections (its application_name)."""
    return {pid for (pid,) in admin(server, "SELECT pid FROM pg_stat_activity WHERE application_name = 'eucadb'")}


def live(server: PgServer, pids: set[int]) -> set[int]:
    """Which of `pids` are still backends of `server`."""
    return {pid for (pid,) in admin(server, "SELECT pid FROM pg_stat_activity") if pid in pids}


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """A backend exits a moment after its client closed the socket: wait for it, boundedly."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {seconds}s still not true: {what}")
        time.sleep(0.05)


def remote_engines(pools: PoolManager) -> dict:
    return {ctx.name: pools.engine(ctx.name) for ctx in REMOTE}


@pytest.mark.parametrize("breakage", ["bad password", "wrong port", "certificate names another host"])
def test_a_failed_swap_keeps_the_old_engines(pools, primary, server_pki, breakage):
    good = target(primary, server_pki)
    pools.swap(good, LOGINS)
    before = remote_engines(pools)
    last = REMOTE[-1]   # the last context fails: the engines built for the others must not be kept
    bad, logins, error = {
        "bad password": (good, {**LOGINS, last.name: (LOGINS[last.name][0], "wrong")},
                         "password authentication failed"),
        "wrong port": (target(primary, server_pki, port=free_port()), LOGINS, "refused"),
        "certificate names another host": (target(primary, server_pki, dns_name="db.other.eucadb.internal"),
                                           LOGINS, "does not match host name"),
    }[breakage]
    old = {served_by(pools, ctx.name)[2] for ctx in REMOTE}
    with pytest.raises(DatabaseError, match=error):
        pools.swap(bad, logins)
    wait_until(lambda: eucadb_backends(primary) == old, 10,
               "only the old engines' connections are left: those built for the failed swap are closed")
    assert pools.target == good
    assert remote_engines(pools) == before, "the old engines stay in place"
    for ctx in REMOTE:
        assert served_by(pools, ctx.name)[:2] == (primary.port, True)
    assert pools.check() is None, "the old logins are still the ones checked"


def test_a_successful_swap_disposes_the_old_engines(pools, primary, second, server_pki):
    pools.swap(target(primary, server_pki), LOGINS)
    held = remote_engines(pools)   # as a request in flight would hold them
    pids = set()
    for ctx in REMOTE:
        port, tls, pid = served_by(pools, ctx.name)
        assert (port, tls) == (primary.port, True)
        pids.add(pid)
    assert live(primary, pids) == pids, "returned connections stay pooled (open) until the swap"

    pools.swap(target(second, server_pki), LOGINS)
    assert pools.target.endpoint.port == second.port
    wait_until(lambda: not live(primary, pids), 10, f"connections {pids} to the old server closed")
    for ctx in REMOTE:
        assert served_by(pools, ctx.name)[:2] == (second.port, True)
    assert held, "the old engines were still referenced: only dispose() could close their connections"


def test_drain_makes_remote_contexts_unavailable_and_keeps_local_ones(pools, primary, server_pki):
    pools.swap(target(primary, server_pki), LOGINS)
    held = remote_engines(pools)
    pids = {served_by(pools, ctx.name)[2] for ctx in REMOTE}
    pools.drain()
    assert pools.target is None
    for ctx in REMOTE:
        assert not pools.ready(ctx.name)
        with pytest.raises(ServiceUnavailable, match=ctx.service):
            pools.engine(ctx.name)
        with pytest.raises(ServiceUnavailable):
            with pools.session(ctx.name):
                pass
    for ctx in LOCAL:
        assert pools.ready(ctx.name)
        with pools.session(ctx.name) as s:
            assert s.execute(text("SELECT 1")).scalar() == 1
    assert pools.check() is not None, "no remote pools is not healthy"
    wait_until(lambda: not live(primary, pids), 10, f"drained connections {pids} closed")
    assert held


def test_writers_refuse_a_hot_standby(pools, primary, standby, server_pki):
    assert admin(standby, "SELECT pg_is_in_recovery()") == [(True,)], "the fixture must be a real replica"
    replica = target(standby, server_pki)
    for ctx in REMOTE:   # the replica takes the same TLS logins: the refusal is about recovery alone
        assert probe(replica.endpoint, *LOGINS[ctx.name], ctx.database) >= 150000
    good = target(primary, server_pki)
    pools.swap(good, LOGINS)
    before = remote_engines(pools)
    with pytest.raises(DatabaseError, match="recovery|read-only"):
        pools.swap(replica, LOGINS)
    assert pools.target == good
    assert remote_engines(pools) == before
    for ctx in REMOTE:
        assert served_by(pools, ctx.name)[:2] == (primary.port, True)


def test_check_names_the_context_that_fails(pools, second, server_pki):
    pools.swap(target(second, server_pki), LOGINS)
    assert pools.check() is None
    last = REMOTE[-1]
    user = LOGINS[last.name][0]
    admin(second, f'ALTER ROLE "{user}" NOLOGIN')
    try:
        problem = pools.check()
        assert problem is not None and problem.startswith(last.name) and "not permitted to log in" in problem
    finally:
        admin(second, f'ALTER ROLE "{user}" LOGIN')
    second.halt()
    try:
        problem = pools.check()
        assert problem is not None and problem.startswith(REMOTE[0].name), problem
    finally:
        launch(second)
    assert pools.check() is None


def test_a_session_open_across_a_swap_finishes_on_the_old_server_then_its_connection_closes(
        pools, primary, second, server_pki):
    import gc
    pools.swap(target(primary, server_pki), LOGINS)
    with pools.session("cloudwatch_backend") as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        pools.swap(target(second, server_pki), LOGINS)
        assert s.execute(text("SELECT inet_server_port()")).scalar_one() == primary.port  # finishes there
    gc.disable()   # the connection must be closed by the swap's doing, not by a collector run
    try:
        wait_until(lambda: not live(primary, {pid}), 10,
                   f"the connection returned after the swap (backend {pid}) closed on the old server")
    finally:
        gc.enable()


def test_cluster_facts_tell_a_fresh_cluster_from_a_resumed_one(pools, primary, server_pki):
    from datetime import datetime, timedelta, timezone

    from eucadb.pool.manager import ClusterFacts
    assert pools.cluster() is None                       # no pools, no facts
    pools.swap(target(primary, server_pki), LOGINS)
    facts = pools.cluster()
    assert facts is not None and facts.initialised_at <= facts.started_at <= datetime.now(timezone.utc)
    assert datetime.now(timezone.utc) - facts.initialised_at < timedelta(hours=1)   # this session's initdb
    assert not facts.resumed and facts.boot_found == ""   # not started by eucadb's boot program
    born = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert not ClusterFacts(born, born + timedelta(days=2), "initialised").resumed
    assert ClusterFacts(born, born + timedelta(seconds=5), "reused").resumed
