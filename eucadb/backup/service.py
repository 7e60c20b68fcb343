"""Base backups on demand and the backup catalogue.

Why COPY TO PROGRAM: barman-cloud-backup reads PGDATA from the local disk, so it must run on the
instance, and the instance's only inbound channel is PostgreSQL itself. The admin (a superuser)
asks the server, over its verify-full TLS session, to run the boot program's `backup` sub-command
(named by the server's own `eucadb.backup_command` setting, which setup_db.py writes — eucadb never
sends a command line of its own). The backup runs as PostgreSQL's OS user with the instance role's
S3 credentials; COPY returns when it has finished, and fails when it fails.

The catalogue is read from the bucket with barman-cloud-backup-list, here on the control plane.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
from typing import Any, Iterator

import psycopg2

from eucadb.app import App
from eucadb.backup import barman, snapshots
from eucadb.bootstrap.published import published_address
from eucadb.errors import EucadbError, UserError
from eucadb.retry import Retry, RetryTimeout
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import Names, current_deployment

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LIST_TIMEOUT = 120
FIELDS = ("backup_id", "backup_name", "status", "begin_time", "end_time", "begin_wal", "end_wal",
          "size", "begin_time_iso", "end_time_iso")
KINDS = ("object", "snapshot")   # Barman Cloud base backup in the bucket / volume snapshot (snapshots.py)


def _deployment(app: App) -> str:
    deployment = current_deployment(app.store, create=False)
    if deployment is None:
        raise UserError("no deployment yet: `eucadb up` (or `eucadb workflow launch`) makes one")
    return deployment


@contextlib.contextmanager
def admin_session(app: App, deployment: str) -> Iterator[Any]:
    """An autocommit admin session to the database the leader publishes (TLS verify-full), with no
    statement timeout: a base backup takes as long as it takes."""
    address = published_address(app.store, deployment)
    if address is None:
        raise UserError("the database has no published endpoint: is `eucadb serve` running and "
                        "the database up (`eucadb status`)?")
    vault = app.vault(deployment)
    login = vault.db_logins()[ADMIN]
    args = vault.db_endpoint(address).connect_args(login["user"], login["password"], "postgres")
    try:
        conn = Retry(deadline=app.config["retry.timeout"], retry_on=(psycopg2.OperationalError,)).call(
            lambda: psycopg2.connect(**args), f"connect to the database at {address}")
    except RetryTimeout as exc:
        raise EucadbError(f"cannot reach the database at {address}: "
                          f"{str(exc.last).strip().splitlines()[0] if exc.last else exc}") from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 0")
        yield conn
    finally:
        conn.close()


def default_name(now: dt.datetime | None = None) -> str:
    return "eucadb-" + (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def create_backup(app: App, name: str | None = None, kind: str = "object") -> dict[str, Any]:
    """Take a base backup named `name` (an object-store backup by the instance, or a volume
    snapshot); its catalogue entry, with `seconds`."""
    name = name or default_name()
    if not NAME.fullmatch(name):
        raise UserError(f"backup name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting "
                        "with a letter or digit")
    if kind not in KINDS:
        raise UserError(f"backup kind {kind!r}: one of {', '.join(KINDS)}")
    deployment = _deployment(app)
    if any(b["backup_name"] == name for b in list_backups(app)):
        raise UserError(f"a backup named {name} exists already; `eucadb backup list` shows them")
    started = time.monotonic()
    if kind == "snapshot":
        address = published_address(app.store, deployment)
        with admin_session(app, deployment) as conn:
            row = snapshots.take(app, deployment, conn, address, name)
        return {**row, "seconds": round(time.monotonic() - started, 2)}
    with admin_session(app, deployment) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('eucadb.backup_command', true)")
        command = cur.fetchone()[0]
        if not command:
            raise EucadbError("the database instance has no backup configured (an instance "
                              "launched before backups existed): run `eucadb workflow launch` "
                              "to roll it")
        try:
            cur.execute("COPY (SELECT 1) TO PROGRAM %s", (f"{command} {name}",))
        except psycopg2.Error as exc:
            raise EucadbError(f"the base backup failed on the instance ({str(exc).strip()}); "
                              "its PostgreSQL log says why") from None
    seconds = round(time.monotonic() - started, 2)
    found = [b for b in list_backups(app) if b["backup_name"] == name]
    if not found:
        raise EucadbError(f"backup {name} finished but is not in the bucket's catalogue")
    return {**found[0], "seconds": seconds}


def list_backups(app: App) -> list[dict[str, Any]]:
    """The deployment's base backups, oldest first, with their time and WAL ranges."""
    names = Names(_deployment(app))
    cmd = barman.argv("cloud_backup_list", names, barman.endpoint_of(app.config), "--format", "json")
    done = barman.run(app.config, cmd, LIST_TIMEOUT, f"barman-cloud-backup-list did not answer within {LIST_TIMEOUT}s",
                      f"cannot list the backups in s3://{names.backup_bucket}/{names.backup_prefix}")
    try:
        doc = json.loads(done.stdout or "{}")
    except ValueError:
        raise EucadbError(f"barman-cloud-backup-list printed no JSON: {done.stdout[:200]!r}") from None
    rows = [{**{k: b.get(k) for k in FIELDS}, "kind": "object"} for b in doc.get("backups_list", [])]
    rows += snapshots.list_snapshot_backups(app, names.deployment)
    return sorted(rows, key=lambda b: _epoch(b["begin_time_iso"]) if b.get("begin_time_iso") else 0.0)


def _epoch(when: str) -> float:
    parsed = dt.datetime.fromisoformat(when)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()
