"""A frozen PostgreSQL (every process SIGSTOPped: TCP accepted and acknowledged, nothing answers)
cannot hold a pooled connection's caller beyond the pool's bounds. Real server, real psycopg2."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from eucadb.pool.manager import PoolSettings, install_bounds
from eucadb.pool.watchdog import Watchdog
from pg import start_pg

SETTINGS = PoolSettings(statement_timeout_ms=1000, connect_timeout=2, ping_seconds=1.0)   # bound: 3 s


@pytest.fixture
def frozen_server():
    server = start_pg()
    master = int((server.datadir / "postmaster.pid").read_text().split()[0])

    def processes() -> list[int]:
        children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        return [master, *map(int, children)]

    state = {"pids": []}

    def freeze() -> None:
        state["pids"] = processes()
        for pid in state["pids"]:
            os.kill(pid, signal.SIGSTOP)

    def thaw() -> None:
        for pid in state["pids"]:
            with contextlib.suppress(ProcessLookupError):   # a backend may have exited since
                os.kill(pid, signal.SIGCONT)
    try:
        yield server, freeze, thaw
    finally:
        thaw()
        server.stop()


def timed(work) -> tuple[float, BaseException | None]:
    """Run `work` on a thread (so a hang fails the test instead of stalling it); seconds and error."""
    outcome: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            work()
        except BaseException as exc:   # noqa: BLE001 — returned to the test to assert on
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        return float("inf"), None   # hung: the assertions on the outcome fail
    return outcome["seconds"], outcome.get("error")


def test_a_query_on_an_open_connection_to_a_frozen_server_fails_within_the_bound(frozen_server):
    server, freeze, thaw = frozen_server
    engine = install_bounds(create_engine(server.url(), connect_args={
        "options": SETTINGS.options, "connect_timeout": SETTINGS.connect_timeout}), SETTINGS, Watchdog())
    conn = engine.connect()
    assert conn.execute(text("SHOW lock_timeout")).scalar() == "5s"
    assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "30s"
    conn.commit()
    conn.close()   # back in the pool, open
    conn = engine.connect()
    freeze()
    try:
        query = timed(lambda: conn.execute(text("SELECT 1")))
        checkout = timed(lambda: engine.connect().close())    # a pooled one: the ping, then a reconnect
    finally:
        thaw()
    conn.close()
    engine.dispose()
    assert isinstance(query[1], OperationalError) and "closed the connection" in str(query[1])
    assert query[0] < SETTINGS.operation_seconds + 1.5, query[0]
    assert isinstance(checkout[1], OperationalError), checkout[1]
    assert checkout[0] < 2 * (SETTINGS.ping_seconds + SETTINGS.connect_timeout) + 1.5, checkout[0]
