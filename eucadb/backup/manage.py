"""`backup show | delete` and retention after each backup: the catalogue's rules in one place.

A backup a restore in progress uses is never deleted, by retention or by hand (not even with
--force). By hand, deleting below the retention minimum (retention_count, and never the last
backup) needs --force, and the refusal says what the deletion would break.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from eucadb.app import App
from eucadb.backup import retention, service
from eucadb.backup.restore import done_backups, window
from eucadb.errors import UserError
from eucadb.workflow.engine import RunState, history

log = logging.getLogger(__name__)


def in_use(app: App, deployment: str) -> set[str]:
    """Backup ids that restores in progress start from."""
    return {r["options"]["restore"]["backup_id"] for r in history(app.store, deployment=deployment)
            if r["kind"] == "restore" and r["state"] == RunState.RUNNING.value
            and (r["options"].get("restore") or {}).get("backup_id")}


def _find(app: App, backup_id: str) -> dict[str, Any]:
    found = [b for b in service.list_backups(app) if backup_id in (b["backup_id"], b["backup_name"])]
    if not found:
        raise UserError(f"no backup {backup_id!r} in the bucket (`eucadb backup list` shows them)")
    return found[0]


def show(app: App, backup_id: str) -> dict[str, Any]:
    """One backup's catalogue entry, whether retention keeps it, and the window it is part of."""
    deployment = service._deployment(app)
    backup = _find(app, backup_id)
    backups = done_backups(app)
    count, days = retention.policy(app.properties.values())
    kept = retention.kept(backups, count, days, dt.datetime.now(dt.timezone.utc))
    return {**backup, "in_use_by_restore": backup["backup_id"] in in_use(app, deployment),
            "kept_by_retention": backup["backup_id"] in kept,
            "retention": {"count": count, "days": days},
            **window(backups, None)}


def delete(app: App, backup_id: str, force: bool = False) -> dict[str, Any]:
    deployment = service._deployment(app)
    backup = _find(app, backup_id)
    bid = backup["backup_id"]
    if bid in in_use(app, deployment):
        raise UserError(f"backup {bid} is in use by a restore in progress; it cannot be deleted until "
                        "the restore has finished")
    done = done_backups(app)
    count, _ = retention.policy(app.properties.values())
    remaining = [b for b in done if b["backup_id"] != bid]
    minimum = max(count, 1)
    if backup["status"] == "DONE" and len(remaining) < minimum and not force:
        earliest = window(remaining, None)["earliest_restorable_time"]
        breaks = ("no restore is possible at all until the next backup" if not remaining else
                  f"{len(remaining)} backups remain, below retention_count {count}; the earliest "
                  f"restorable time moves to {earliest}")
        raise UserError(f"deleting {bid} breaks the retention minimum: {breaks}; --force deletes it anyway")
    retention.delete(app, deployment, bid)
    return {"deleted": bid, "remaining": len(remaining) if backup["status"] == "DONE" else len(done)}


def apply_retention(app: App, deployment: str) -> list[str]:
    """Delete what the policy lets go (oldest first), never a backup a restore uses; the ids deleted."""
    count, days = retention.policy(app.properties.values())
    if not count and not days:
        return []
    gone = retention.expired(done_backups(app), count, days, dt.datetime.now(dt.timezone.utc),
                             in_use(app, deployment))
    for bid in gone:
        retention.delete(app, deployment, bid)
        log.info("retention: deleted base backup %s (and the WAL only it needed)", bid)
    return gone
