"""Daily partitions of the append-only tables, maintained by the admin role (writers cannot CREATE).

Retention is a DROP of whole days: no dead tuples, little WAL. Partitions are created a few days
ahead so rows land in them; a day whose rows already sit in the DEFAULT partition is left there (a
partition cannot be attached over rows the default holds) and is purged from it at retention time.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import DatabaseError
from eucadb.pool.contexts import BY_NAME
from eucadb.pool.endpoint import Endpoint
from eucadb.pool.migrate import admin_engine

TABLES = ("metric_datapoints", "alarm_history")
RETENTION_DAYS = 455   # alarm history; datapoints move through the tiers (tiers.py, rollups.py)
NAME_RE = re.compile(r"^(?P<table>[a-z0-9_]+)_p(?P<day>\d{8})$")


def midnight(day: date) -> datetime:
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


def span_start(day: date, span: int) -> date:
    """The first day of the `span`-day partition holding `day` (spans aligned on day 1 of ordinals)."""
    return date.fromordinal(day.toordinal() - (day.toordinal() - 1) % span)


def ensure(conn: Connection, table: str, days: list[date], span: int = 1) -> list[str]:
    """Create the partitions of `table` holding `days` that are missing; the names created."""
    created: list[str] = []
    have = existing(conn, table)
    for first in sorted({span_start(d, span) for d in days}):
        if first in have:
            continue
        lo, hi = midnight(first), midnight(first + timedelta(days=span))
        in_default = conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table}_default WHERE ts >= :lo "
                                       "AND ts < :hi)"), {"lo": lo, "hi": hi}).scalar()
        if in_default:
            continue
        name = partition_name(table, first)
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM "
                          f"('{lo.isoformat()}') TO ('{hi.isoformat()}')"))
        created.append(name)
    return created


def ensure_daily(conn: Connection, today: date, ahead: int = 3, tables: tuple[str, ...] = TABLES) -> list[str]:
    """Create the partitions of today .. today+ahead that are missing; the names created."""
    days = [today + timedelta(days=offset) for offset in range(ahead + 1)]
    return [name for table in tables for name in ensure(conn, table, days)]


def drop_before(conn: Connection, cutoff: date, tables: tuple[str, ...] = TABLES, span: int = 1) -> list[str]:
    """Drop every partition wholly before `cutoff` and purge the default partition likewise."""
    dropped = []
    for table in tables:
        for day, name in sorted(existing(conn, table).items()):
            if day + timedelta(days=span) <= cutoff:
                conn.execute(text(f"DROP TABLE {name}"))
                dropped.append(name)
        conn.execute(text(f"DELETE FROM {table}_default WHERE ts < :cutoff"), {"cutoff": midnight(cutoff)})
    return dropped


def run(engine: Engine, today: date) -> tuple[list[str], list[str]]:
    """Partitions of the CloudWatch tables, as the admin role: create the next days, roll closed
    raw days up into the tiers and drop them (rollups.py), drop what is past retention. Every step
    is idempotent, so a failed run is simply run again; the partitions created and dropped."""
    from eucadb.services.cloudwatch import rollups   # rollups builds on this module
    with engine.begin() as conn:
        created = ensure_daily(conn, today)
        created += rollups.ensure_tiers(conn, today)
    done = rollups.roll_up(engine, today)
    with engine.begin() as conn:
        dropped = drop_before(conn, today - timedelta(days=RETENTION_DAYS), tables=("alarm_history",))
        dropped += rollups.drop_expired(conn, today)
        rollups.restrict_writers(conn)
    return created, done.dropped + dropped


def maintain(endpoint: Endpoint, admin_user: str, admin_password: str,
             today: date) -> tuple[list[str], list[str]]:
    """run() on the remote CloudWatch database; by the loop's leader once a day."""
    engine = admin_engine(endpoint, admin_user, admin_password, BY_NAME["cloudwatch_backend"].database)
    try:
        return run(engine, today)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"partition maintenance: {exc.__cause__ or exc}") from None
    finally:
        engine.dispose()
