"""Scheduled base backups: when the next one is due, and the bookkeeping that makes a missed run
happen once, never twice.

The cron expression is read with APScheduler's CronTrigger (the same one the property accepts).
The store keeps the last fire time taken: a leader that starts after missing several fire times
takes one backup for all of them (the newest missed time), and claims it in the store before it
starts, so neither a restart nor a second server takes it again.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from eucadb.store import Fence, Store, unfenced
from eucadb.store.models import BackupSchedule, utcnow

UTC = dt.timezone.utc
MAX_MISSED = 100_000      # a per-minute schedule missed for ~70 days still resolves in one pass


def due(expression: str, last_fire: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The newest fire time in (last_fire, now], or None when none passed."""
    trigger = CronTrigger.from_crontab(expression, timezone=UTC)
    fire, newest = trigger.get_next_fire_time(None, last_fire + dt.timedelta(seconds=1)), None
    for _ in range(MAX_MISSED):
        if fire is None or fire > now:
            break
        newest = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return newest


def next_fire(expression: str, now: dt.datetime) -> dt.datetime | None:
    return CronTrigger.from_crontab(expression, timezone=UTC).get_next_fire_time(None, now)


def _aware(ts: dt.datetime) -> dt.datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ScheduleView:
    schedule: str
    last_fire_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    backup_id: str | None
    error: str | None

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        upcoming = next_fire(self.schedule, now) if self.schedule else None
        return {"schedule": self.schedule, "last_fire_at": self.last_fire_at.isoformat(),
                "last_started_at": self.started_at.isoformat() if self.started_at else None,
                "last_finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "last_backup_id": self.backup_id, "last_error": self.error,
                "next_fire_at": upcoming.isoformat() if upcoming else None}


def read(store: Store, deployment: str, expression: str, fence: Fence = unfenced,
         now: dt.datetime | None = None) -> ScheduleView | None:
    """The schedule's record; a new or changed expression starts counting from now (no backup for
    fire times from before it was set)."""
    if not expression:
        return None
    now = now or dt.datetime.now(UTC)
    with store.session() as s:
        row = s.get(BackupSchedule, deployment)
        if row is None or row.schedule != expression:
            fence(s)
            if row is None:
                row = BackupSchedule(deployment=deployment)
                s.add(row)
            row.schedule, row.last_fire_at = expression, now
        return ScheduleView(row.schedule, _aware(row.last_fire_at), row.started_at and _aware(row.started_at),
                            row.finished_at and _aware(row.finished_at), row.backup_id, row.error)


def claim(store: Store, deployment: str, fire: dt.datetime, fence: Fence = unfenced) -> bool:
    """Take fire time `fire` (False if it, or a later one, was taken already)."""
    with store.session() as s:
        fence(s)
        row = s.get(BackupSchedule, deployment)
        if row is None or _aware(row.last_fire_at) >= fire:
            return False
        row.last_fire_at, row.started_at, row.finished_at, row.error = fire, utcnow(), None, None
        return True


def record(store: Store, deployment: str, backup_id: str | None, error: str | None,
           fence: Fence = unfenced) -> None:
    with store.session() as s:
        fence(s)
        row = s.get(BackupSchedule, deployment)
        if row is not None:
            row.finished_at, row.backup_id, row.error = utcnow(), backup_id, error
