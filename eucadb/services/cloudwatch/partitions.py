"""Daily partitions of the append-only tables, maintained by the admin role (writers cannot CREATE).

Retention is a DROP of whole days: no dead tuples, little WAL. Partitions are created a few days
ahead so rows land in them; a day whose rows already sit in the DEFAULT partition is left there (a
partition cannot be attached over rows the default holds) and is purged from it at retention time.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import DatabaseError
from eucadb.pool.contexts import BY_NAME
from eucadb.pool.endpoint import Endpoint
from eucadb.pool.migrate import admin_engine

TABLES = ("metric_datapoints", "alarm_history")
RETENTION_DAYS = 455   # CloudWatch keeps hourly data for 455 days, then nothing
NAME_RE = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def existing(conn: Connection, table: str) -> dict[date, str]:
    rows = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                             "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"), {"t": table})
    out = {}
    for (name,) in rows:
        m = NAME_RE.match(name)
        if m and m["table"] == table:
            out[datetime.strptime(m["day"], "%Y%m%d").date()] = name
    return out


def ensure_daily(conn: Connection, today: date, ahead: int = 3, tables: tuple[str, ...] = TABLES) -> list[str]:
    """Create the partitions of today .. today+ahead that are missing; the names created."""
    created = []
    for table in tables:
        have = existing(conn, table)
        for offset in range(ahead + 1):
            day = today + timedelta(days=offset)
            if day in have:
                continue
            lo, hi = _midnight(day), _midnight(day + timedelta(days=1))
            in_default = conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table}_default WHERE ts >= :lo "
                                           "AND ts < :hi)"), {"lo": lo, "hi": hi}).scalar()
            if in_default:
                continue
            name = partition_name(table, day)
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM "
                              f"('{lo.isoformat()}') TO ('{hi.isoformat()}')"))
            created.append(name)
    return created


def drop_before(conn: Connection, cutoff: date, tables: tuple[str, ...] = TABLES) -> list[str]:
    """Drop every daily partition wholly before `cutoff` and purge the default partition likewise."""
    dropped = []
    for table in tables:
        for day, name in sorted(existing(conn, table).items()):
            if day < cutoff:
                conn.execute(text(f"DROP TABLE {name}"))
                dropped.append(name)
        conn.execute(text(f"DELETE FROM {table}_default WHERE ts < :cutoff"), {"cutoff": _midnight(cutoff)})
    return dropped


def maintain(endpoint: Endpoint, admin_user: str, admin_password: str,
             today: date) -> tuple[list[str], list[str]]:
    """Daily partitions of the CloudWatch tables, as the admin role: create the next days, drop
    those past retention. Run by the loop's leader once a day."""
    engine = admin_engine(endpoint, admin_user, admin_password, BY_NAME["cloudwatch_backend"].database)
    try:
        with engine.begin() as conn:
            created = ensure_daily(conn, today)
            dropped = drop_before(conn, today - timedelta(days=RETENTION_DAYS))
        return created, dropped
    except SQLAlchemyError as exc:
        raise DatabaseError(f"partition maintenance: {exc.__cause__ or exc}") from None
    finally:
        engine.dispose()
