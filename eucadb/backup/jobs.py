"""The leader's backup jobs: the scheduled base backup (then retention) on its own thread, and the
restorable window status shows (the catalogue is read in the background, never by /status).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Mapping

from eucadb.backup import manage, schedule, service
from eucadb.backup.restore import done_backups, window
from eucadb.errors import EucadbError
from eucadb.properties.registry import WORKER
from eucadb.store import Fence

log = logging.getLogger("eucadb.backup")
CATALOGUE_EVERY = 300.0     # seconds between catalogue reads for the restorable window


class ScheduledBackups:
    def __init__(self, app):
        self.app = app
        self._thread: threading.Thread | None = None
        self._view: schedule.ScheduleView | None = None
        self._catalogue: list[dict[str, Any]] | None = None
        self._catalogue_at = 0.0
        self._catalogue_thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def due(self, deployment: str, props: Mapping[str, Any], fence: Fence) -> str:
        """The fire time to take now (ISO), or "" (none, or a backup is still running)."""
        self._refresh_catalogue(deployment)
        expression = props[WORKER + "backup.schedule"]
        self._view = schedule.read(self.app.store, deployment, expression, fence)
        if self._view is None or self.busy:
            return ""
        fire = schedule.due(expression, self._view.last_fire_at, dt.datetime.now(dt.timezone.utc))
        return fire.isoformat() if fire else ""

    def take(self, action, fence: Fence) -> str:
        deployment = service._deployment(self.app)
        fire = dt.datetime.fromisoformat(action.fire)
        if not schedule.claim(self.app.store, deployment, fire, fence):
            return f"scheduled backup of {action.fire} already taken"

        def work() -> None:
            backup_id, error = None, None
            try:
                made = service.create_backup(self.app, service.default_name(fire))
                backup_id = made["backup_id"]
                deleted = manage.apply_retention(self.app, deployment)
                log.info("scheduled base backup %s done in %ss; retention deleted %s", backup_id,
                         made["seconds"], deleted or "nothing")
            except EucadbError as exc:
                error = str(exc)
                log.error("scheduled base backup of %s failed: %s", action.fire, exc)
            schedule.record(self.app.store, deployment, backup_id, error, fence)
            self._catalogue_at = 0.0     # the window changed: read the catalogue again
        self._thread = threading.Thread(target=work, name="scheduled-backup", daemon=True)
        self._thread.start()
        return action.reason

    def _refresh_catalogue(self, deployment: str) -> None:
        if time.monotonic() - self._catalogue_at < CATALOGUE_EVERY or (
                self._catalogue_thread is not None and self._catalogue_thread.is_alive()):
            return
        self._catalogue_at = time.monotonic()

        def read() -> None:
            try:
                self._catalogue = done_backups(self.app)
            except EucadbError as exc:
                log.warning("cannot read the backup catalogue for the restorable window: %s", exc)
        self._catalogue_thread = threading.Thread(target=read, name="backup-catalogue", daemon=True)
        self._catalogue_thread.start()

    def status(self, latest_archived: str | None) -> dict[str, Any]:
        """The restorable window (earliest: the oldest base backup's end; latest: the newest archived
        WAL, like RDS's LatestRestorableTime) and the schedule's record."""
        now = dt.datetime.now(dt.timezone.utc)
        doc: dict[str, Any] = {"base_backups": None if self._catalogue is None else len(self._catalogue),
                               **window(self._catalogue or [], latest_archived)}
        doc["scheduled"] = self._view.as_dict(now) if self._view else None
        doc["scheduled_running"] = self.busy
        return doc
