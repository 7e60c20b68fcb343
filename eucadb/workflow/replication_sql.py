"""What the leader asks of a member's PostgreSQL as the admin role, over TLS verify-full.

Slots, the synchronous standby list and re-pointing a replica are each one idempotent statement,
so a workflow step that is killed and resumed just asks again.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Sequence

import psycopg2
from psycopg2 import sql

from eucadb.errors import DatabaseError
from eucadb.pool.endpoint import Endpoint
from eucadb.workflow.members import SLOT_PREFIX


@contextlib.contextmanager
def admin_session(endpoint: Endpoint, admin: dict) -> Iterator[Any]:
    """An autocommit cursor as the admin; psycopg2 errors become DatabaseError (retried by steps)."""
    try:
        conn = psycopg2.connect(**endpoint.connect_args(admin["user"], admin["password"], "postgres"))
    except psycopg2.Error as exc:
        raise DatabaseError(f"{endpoint.address}: {str(exc).strip()}") from None
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    except psycopg2.Error as exc:
        raise DatabaseError(f"{endpoint.address}: {str(exc).strip()}") from None
    finally:
        conn.close()


def slots(cur) -> dict[str, bool]:
    """eucadb's physical slots on this server → active (a replica streams through it)."""
    cur.execute("SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical' "
                "AND slot_name LIKE %s", (SLOT_PREFIX + "%",))
    return {name: bool(active) for name, active in cur.fetchall()}


def ensure_slot(cur, slot: str) -> bool:
    """Create the slot if absent, reserving WAL from now (True when created)."""
    if slot in slots(cur):
        return False
    cur.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
    return True


def drop_slot(cur, slot: str) -> bool:
    """Drop an inactive slot (a slot still in use is left: its replica has not stopped yet)."""
    found = slots(cur)
    if slot not in found:
        return False
    if found[slot]:
        raise DatabaseError(f"slot {slot} is still in use")
    cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return True


def standby_names(names: Sequence[str], synchronous: bool) -> str:
    """synchronous_standby_names for the replicas (their application_name is their member name)."""
    if not synchronous or not names:
        return ""
    return "ANY 1 (" + ", ".join(f'"{n}"' for n in sorted(names)) + ")"


def set_synchronous(cur, value: str) -> bool:
    """Keep synchronous_standby_names in step with the members (ALTER SYSTEM + reload)."""
    cur.execute("SHOW synchronous_standby_names")
    if cur.fetchone()[0] == value:
        return False
    cur.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(value)))
    cur.execute("SELECT pg_reload_conf()")
    return True


def position(cur) -> tuple[bool, int]:
    """(in recovery, the WAL position it holds: received on a replica, current on a primary)."""
    cur.execute("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() "
                "THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn")
    recovery, at = cur.fetchone()
    return bool(recovery), int(at or 0)


def promote(cur) -> bool:
    """pg_promote (waiting for it), then writable by default; a no-op on a primary."""
    cur.execute("SELECT pg_is_in_recovery()")
    promoted = False
    if cur.fetchone()[0]:
        cur.execute("SELECT pg_promote(true, 60)")
        if not cur.fetchone()[0]:
            raise DatabaseError("pg_promote did not finish within 60 s")
        promoted = True
    cur.execute("ALTER SYSTEM SET default_transaction_read_only = off")
    cur.execute("SELECT pg_reload_conf()")
    return promoted


def repoint(cur, new_primary: str) -> bool:
    """Point a replica's walreceiver at `new_primary` (its primary_conninfo with the new hostaddr)
    and reload: PostgreSQL ≥ 13 restarts the walreceiver; recovery_target_timeline=latest makes it
    follow the promoted timeline."""
    cur.execute("SHOW primary_conninfo")
    current = cur.fetchone()[0]
    wanted = re.sub(r"hostaddr=\S+", f"hostaddr={new_primary}", current)
    if wanted == current:
        return False
    cur.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(wanted)))
    cur.execute("SELECT pg_reload_conf()")
    return True


def quiesce(cur, writers: Sequence[str]) -> int:
    """Stop the writes on a primary that is about to hand over: new transactions read-only by
    default, the writer roles' sessions ended, then the WAL position every replica must reach."""
    cur.execute("ALTER SYSTEM SET default_transaction_read_only = on")
    cur.execute("SELECT pg_reload_conf()")
    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
                (list(writers),))
    cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    return int(cur.fetchone()[0])
