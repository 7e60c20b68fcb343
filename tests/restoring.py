"""Helpers of the restore tests: rows of one tagged series, the database's clock, its address."""
from __future__ import annotations

from serving import enabled, writer_connect


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
