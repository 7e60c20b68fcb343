"""`eucadb backup restore`: check the request, record it as a restore run, follow it to the end.

RDS-style and never destructive: the leader runs the restore workflow (workflow/launch.py RESTORE),
which makes a NEW volume, rolls the instance onto it (the instance restores itself at boot from the
bucket), waits for the restored database and keeps the old volume, tagged. The request is a
persisted run, so a leader killed mid-way resumes it. Bad input changes nothing.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

from eucadb.app import App
from eucadb.backup import service
from eucadb.bootstrap.observe import LAUNCH_INPUTS, digest
from eucadb.bootstrap.services import ServiceRegistry, ServiceState
from eucadb.errors import EucadbError, UserError
from eucadb.properties.registry import WORKER
from eucadb.workflow.deployment import TAG, Names
from eucadb.workflow.engine import RunState, history, request_run
from eucadb.workflow.launch import RESTORE
from eucadb.workflow.steps.base import tags_dict
from eucadb.workflow.steps.restore import FAILED_RESTORE, REPLACED_BY, RETIRED
from eucadb.workflow.steps.volume import RESTORE_TARGET, RESTORED_FROM

ARCHIVE_WAIT = 180          # seconds for the segment holding the restore's end marker to reach S3
FOLLOW_TIMEOUT = 1800


def utc(text: str) -> dt.datetime:
    """An ISO 8601 time; one without a zone is UTC (as RDS's --restore-time)."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"--time {text!r} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _stamp(when: dt.datetime) -> str:
    """UTC with a numeric offset: PostgreSQL checks recovery_target_time before it has loaded the
    time zone abbreviations, so a trailing "Z" is refused there."""
    return when.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def done_backups(app: App) -> list[dict[str, Any]]:
    """The base backups a restore can start from (DONE), oldest first."""
    return [b for b in service.list_backups(app) if b["status"] == "DONE" and b.get("end_time_iso")]


def window(backups: list[dict[str, Any]], latest: str | None) -> dict[str, Any]:
    """The restorable window: from the end of the oldest base backup to the newest archived WAL."""
    return {"earliest_restorable_time": backups[0]["end_time_iso"] if backups else None,
            "latest_restorable_time": latest if backups else None}


def choose(app: App, backup_id: str | None, when: str | None) -> dict[str, Any]:
    """The backup and target a request means, checked against the catalogue; UserError if none."""
    backups = done_backups(app)
    if backup_id is not None and backup_id.startswith("snap-"):
        raise UserError(f"backup {backup_id} is a volume snapshot: `backup restore` restores object-store "
                        "backups (--kind object); a snapshot restores as README's Backups section shows")
    backups = [b for b in backups if b.get("kind", "object") == "object"]
    if backup_id is not None:
        found = [b for b in backups if backup_id in (b["backup_id"], b["backup_name"])]
        if not found:
            known = ", ".join(b["backup_id"] for b in backups) or "none yet"
            raise UserError(f"no restorable backup {backup_id!r} (restorable: {known}; `eucadb backup list`)")
        return {"backup_id": found[0]["backup_id"], "target_time": None}
    target = utc(when or "")
    now = dt.datetime.now(dt.timezone.utc)
    if target > now:
        raise UserError(f"--time {_stamp(target)} is in the future (now {_stamp(now)})")
    before = [b for b in backups if dt.datetime.fromisoformat(b["end_time_iso"]) <= target]
    if not before:
        earliest = window(backups, None)["earliest_restorable_time"]
        raise UserError(f"--time {_stamp(target)} is before the earliest restorable time "
                        f"({earliest or 'no base backup yet: `eucadb backup create`'})")
    return {"backup_id": before[-1]["backup_id"], "target_time": _stamp(target)}


def seal_archive(app: App, deployment: str) -> str:
    """Make the archive reach past now: a commit (the record a time target stops at) and a WAL
    switch on the live database, then wait until that segment is in the bucket. Returns the latest
    restorable time. Without a reachable database, the request is refused (UserError)."""
    try:
        with service.admin_session(app, deployment) as conn, conn.cursor() as cur:
            cur.execute("SELECT txid_current(), clock_timestamp()")
            sealed = cur.fetchone()[1]
            cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
            segment = cur.fetchone()[0]
            deadline = time.monotonic() + ARCHIVE_WAIT
            while True:
                cur.execute("SELECT pg_stat_clear_snapshot()")
                cur.execute("SELECT last_archived_wal FROM pg_stat_archiver")
                archived = cur.fetchone()[0]
                if archived and archived[:24] >= segment:
                    return _stamp(sealed)
                if time.monotonic() > deadline:
                    raise EucadbError(f"WAL segment {segment} not archived within {ARCHIVE_WAIT}s "
                                      f"(last archived {archived}); `eucadb status` shows the archiver")
                time.sleep(0.5)
    except EucadbError as exc:
        raise UserError(f"cannot make the archive reach the restore time: {exc}") from None


def start_restore(app: App, backup_id: str | None, when: str | None) -> dict[str, Any]:
    """Check the request and record the restore run; nothing changes when it is refused."""
    if (backup_id is None) == (when is None):
        raise UserError("give a BACKUP_ID or --time ISO8601 (one of them)")
    deployment = service._deployment(app)
    props = app.properties.values()
    if not props[WORKER + "configured"]:
        raise UserError(f"{WORKER}configured is false: there is no database to restore onto")
    if props[WORKER + "volume"]:
        raise UserError(f"{WORKER}volume is set ({props[WORKER + 'volume']}): a restore makes a new "
                        "volume, so it needs one eucadb manages; reset the property first")
    running = [r for r in history(app.store, deployment=deployment) if r["state"] == RunState.RUNNING.value]
    if running:
        raise UserError(f"a {running[0]['kind']} (run {running[0]['run']}) is in progress; wait for it")
    want = choose(app, backup_id, when)
    latest = seal_archive(app, deployment) if want["target_time"] else None
    if latest and utc(want["target_time"]) > utc(latest):
        raise UserError(f"--time {want['target_time']} is after the latest restorable time ({latest})")
    token = "restore-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    request = {"token": token, **want}
    run_id = request_run(app.store, RESTORE, deployment,
                         {"restore": request, "digest": digest(props, LAUNCH_INPUTS)})
    return {"run": run_id, **request}


def follow(app: App, run_id: int, progress: Callable[[str], None],
           timeout: float = FOLLOW_TIMEOUT) -> dict[str, Any]:
    """Wait until the run succeeded and every service is ENABLED again (or the run failed)."""
    deadline, said = time.monotonic() + timeout, ""
    registry = ServiceRegistry(app.store)
    while time.monotonic() < deadline:
        run = history(app.store, run_id=run_id)[0]
        states = {n: s for n, s in registry.all().items() if not s.admin_disabled}
        step = next((st for st in run["steps"] if st["state"] in ("running", "pending", "failed")), None)
        line = (f"restore: step {step['step']} ({step['state']})" if step and run["state"] == "running"
                else f"restore {run['state']}; services " + ", ".join(f"{n} {s.state.value}" for n, s in states.items()))
        if line != said:
            progress(line)
            said = line
        if run["state"] != RunState.RUNNING.value and run["state"] != RunState.SUCCEEDED.value:
            raise EucadbError(f"restore run {run_id} {run['state']}: {run['error']} (the old volume "
                              "is the deployment's again)")
        if run["state"] == RunState.SUCCEEDED.value and all(
                s.state is ServiceState.ENABLED for s in states.values()):
            resources = {k: v for st in run["steps"] for k, v in st["resources"].items()}
            return {"run": run_id, "state": run["state"], "volume_id": resources.get("volume_id"),
                    "retired_volume": resources.get("retired_volume"),
                    "services": {n: s.state.value for n, s in states.items()}}
        time.sleep(1)
    raise EucadbError(f"restore run {run_id} not finished after {timeout:.0f}s (`eucadb workflow show "
                      f"--run {run_id}`)")


VOLUME_COLUMNS = ["volume_id", "role", "state", "size", "retired", "replaced_by", "restored_from",
                  "restore_target"]


def volumes(app: App) -> list[dict[str, Any]]:
    """The deployment's data volumes with what restores recorded on them (tags), current first."""
    deployment = service._deployment(app)
    found = app.clients.call("ec2", "describe_volumes",
                             Filters=[{"Name": f"tag:{TAG}", "Values": [deployment]}])["Volumes"]
    rows = []
    for vol in found:
        tags = tags_dict(vol.get("Tags"))
        role = ("current" if tags.get("Name") == Names(deployment).volume else
                "failed restore" if FAILED_RESTORE in tags else "retired" if RETIRED in tags else "other")
        rows.append({"volume_id": vol["VolumeId"], "role": role, "state": vol["State"], "size": vol["Size"],
                     "retired": tags.get(RETIRED), "replaced_by": tags.get(REPLACED_BY),
                     "restored_from": tags.get(RESTORED_FROM), "restore_target": tags.get(RESTORE_TARGET)})
    return sorted(rows, key=lambda r: (r["role"] != "current", str(r["retired"] or "")))
