"""Which base backups a retention policy lets go, and deleting one (with the WAL only it needed).

The rules are Barman's: REDUNDANCY n keeps the n newest; RECOVERY WINDOW OF n DAYS keeps every
backup that ended inside the window plus the newest one before it (a restore to the window's first
second starts there). With both, a backup either rule keeps stays. eucadb decides and deletes by id
(barman-cloud-backup-delete -b, which also removes the WAL no remaining backup needs) rather than
hand Barman the policy, so a backup a restore in progress uses is never deleted.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from eucadb.app import App
from eucadb.backup import barman, snapshots
from eucadb.properties.registry import WORKER
from eucadb.workflow.deployment import Names

DELETE_TIMEOUT = 600


def _end(backup: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(backup["end_time_iso"])


def kept(backups: list[dict[str, Any]], count: int, days: int, now: dt.datetime) -> set[str]:
    """Ids the policy keeps among DONE `backups` (oldest first); no rule at all keeps everything."""
    ids = [b["backup_id"] for b in backups]
    if not count and not days:
        return set(ids)
    keep: set[str] = set(ids[-count:]) if count else set()
    if days:
        start = now - dt.timedelta(days=days)
        inside = [b["backup_id"] for b in backups if _end(b) >= start]
        before = [b["backup_id"] for b in backups if _end(b) < start]
        keep |= set(inside) | set(before[-1:])
    return keep


def expired(backups: list[dict[str, Any]], count: int, days: int, now: dt.datetime,
            in_use: Iterable[str] = ()) -> list[str]:
    """Ids to delete, oldest first: what the policy lets go, minus what a restore uses."""
    keep = kept(backups, count, days, now) | set(in_use)
    return [b["backup_id"] for b in backups if b["backup_id"] not in keep]


def policy(props) -> tuple[int, int]:
    return int(props[WORKER + "backup.retention_count"]), int(props[WORKER + "backup.retention_days"])


def delete(app: App, deployment: str, backup_id: str) -> None:
    """barman-cloud-backup-delete of one backup (and the WAL nothing else needs); a snapshot
    backup's snapshot and metadata (snapshots.py)."""
    if backup_id.startswith("snap-"):
        snapshots.delete(app, deployment, backup_id)
        return
    names = Names(deployment)
    cmd = barman.argv("cloud_backup_delete", names, barman.endpoint_of(app.config), "-b", backup_id)
    barman.run(app.config, cmd, DELETE_TIMEOUT,
               f"barman-cloud-backup-delete {backup_id} did not finish in {DELETE_TIMEOUT}s",
               f"cannot delete backup {backup_id}")
