"""The WAL archiver's state as PostgreSQL reports it (pg_stat_archiver), for the loop's snapshot.

A failing archive_command does not stop the database: WAL piles up on its disk and the backups
silently stop covering new writes. So the loop reads this every health check and status shows it.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import psycopg2

from eucadb.pool.endpoint import Endpoint

QUERY = ("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, "
         "last_failed_time, current_setting('archive_mode') FROM pg_stat_archiver")
TIMEOUT_MS = 2000       # a frozen database must not hold the loop


@dataclass(frozen=True)
class ArchiverView:
    archive_mode: str = ""
    archived_count: int = 0
    last_archived_wal: str | None = None
    last_archived_time: str | None = None    # ISO 8601 (the database's clock)
    failed_count: int = 0
    last_failed_wal: str | None = None
    last_failed_time: str | None = None
    error: str = ""                           # why it could not be read ("" when it was)

    def as_dict(self) -> dict:
        return asdict(self)


def read_archiver(endpoint: Endpoint, user: str, password: str) -> ArchiverView:
    """One bounded read as the admin role (pg_stat_archiver is readable by superusers and
    pg_monitor); a failure is reported in `error`, never raised."""
    args = endpoint.connect_args(user, password, "postgres", connect_timeout=3)
    args["options"] = f"-c statement_timeout={TIMEOUT_MS}"
    try:
        with contextlib.closing(psycopg2.connect(**args)) as conn, conn.cursor() as cur:
            cur.execute(QUERY)
            count, wal, at, failed, failed_wal, failed_at, mode = cur.fetchone()
    except psycopg2.Error as exc:
        return ArchiverView(error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return ArchiverView(mode, count, wal, at.isoformat() if at else None, failed, failed_wal,
                        failed_at.isoformat() if failed_at else None)
