"""Helpers of the restore tests: rows of one tagged series, the database's clock, its address."""
from __future__ import annotations

import time

import psycopg2

from serving import enabled, writer_connect
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import current_deployment


def insert(env, address: str, series: range) -> None:
    with writer_connect(env, address) as conn, conn.cursor() as cur:
        for i in series:
            cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit)"
                        " VALUES (%s, now(), 1, 1, 1, 1, 'restore')", (i,))


def series(env, address: str) -> list[int]:
    with writer_connect(env, address) as conn, conn.cursor() as cur:
        cur.execute("SELECT series_id FROM metric_datapoints WHERE unit = 'restore' ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def now_on(env, address: str) -> str:
    with writer_connect(env, address) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        return cur.fetchone()[0]


def address(server) -> str:
    return server.wait(enabled, 300)["database"]["endpoint"].split(":")[0]


def archives_after_a_switch(env, address: str, timeout: float = 120) -> str:
    """Switch WAL on the database at `address` and wait until that segment is archived; the segment.
    A restored server must go on archiving (on its new timeline), or the next restore has no WAL."""
    app = env.app()
    vault = app.vault(current_deployment(app.store))
    login = vault.db_logins()[ADMIN]
    conn = psycopg2.connect(**vault.db_endpoint(address).connect_args(login["user"], login["password"], "postgres"))
    conn.autocommit = True
    with conn, conn.cursor() as cur:
        cur.execute("SELECT txid_current()")
        cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
        segment = cur.fetchone()[0]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver")
            archived, failed, failed_wal = cur.fetchone()
            if archived and archived[:24] >= segment:
                return segment
            time.sleep(0.5)
    raise AssertionError(f"{segment} not archived in {timeout}s (last {archived}, failed {failed} {failed_wal})")
