"""Composite alarms' ActionsSuppressor: when a composite's actions are held, and when they run.

Sources (the CloudWatch User Guide, "Suppressing composite alarm actions",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Composite_Alarm_Suppression.html,
and the model's CompositeAlarm / PutCompositeAlarmInput documentation):

- "When a suppressor alarm changes states from OK to ALARM, its composite alarm stops taking
  actions. When a suppressor alarm changes states from ALARM to OK, its composite alarm resumes
  taking actions."                                                          → ActionsSuppressedBy Alarm
- "the composite alarm changes from OK to ALARM at t2. A WaitPeriod starts at t2" and the wait is
  "the maximum time in seconds that the composite alarm waits for the suppressor alarm to go into
  the ALARM state"                                                     → WaitPeriod (entering ALARM only)
- "the suppressor alarm changes from ALARM to OK at t2. An ExtensionPeriod starts at t2"
                                                                            → ExtensionPeriod
- "Composite alarms don't take actions when WaitPeriod and ExtensionPeriod become active. Composite
  alarms take actions that are based on their current states when ExtensionPeriod and WaitPeriod
  become inactive."

How: a transition made while suppressed stages its actions in the action outbox as `Held` (the
drainer skips them). Every evaluator pass looks at the held rows: once nothing suppresses the
composite, the rows of its transition into its *current* state are released to the drainer and
the others are marked `Suppressed` (done, never carried out); an unsuppressed transition supersedes
whatever was held. So a transition's actions still run at most once, and none is lost across a
leader change: everything lives in the local store.

When the suppressor left ALARM comes from the alarm history (its StateUpdate out of ALARM): the
outbox for what is not delivered yet, the remote table otherwise. Looked up only when the
suppressor changed state within the ExtensionPeriod, so rarely.

The reason text is AWS's "Actions suppressed by WaitPeriod" (the composite example of "Alarm events
and EventBridge", CloudWatch User Guide); the same pattern is used for ExtensionPeriod and Alarm.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from eucadb.services.cloudwatch.actions import HELD
from eucadb.services.cloudwatch.composite import is_composite, resolve
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.datapoints import REMOTE
from eucadb.services.cloudwatch.errors import STORAGE_ERRORS
from eucadb.services.cloudwatch.shapes import as_utc
from eucadb.services.cloudwatch.tables import ActionOutbox, Alarm, HistoryOutbox

log = logging.getLogger(__name__)
DROPPED = "Suppressed"   # ActionOutbox.outcome of a held row that will never run (superseded)
LEFT_ALARM_SQL = text(
    "SELECT max(ts) FROM alarm_history WHERE account = :account AND alarm_name = :name "
    "AND item_type = 'StateUpdate' AND ts >= :since AND data->'oldState'->>'stateValue' = 'ALARM' "
    "AND data->'newState'->>'stateValue' <> 'ALARM'")


@dataclass(frozen=True)
class Suppression:
    """Why a composite's actions are held now (the model's ActionsSuppressedBy) and until when
    (None: for as long as the suppressor stays in ALARM)."""

    by: str
    until: datetime | None = None

    @property
    def reason(self) -> str:
        return f"Actions suppressed by {self.by}"


def periods(d: dict) -> tuple[timedelta, timedelta]:
    """WaitPeriod and ExtensionPeriod; one not given is 0 (AWS's console and CDK default is 60 s,
    the API has no documented default)."""
    return (timedelta(seconds=d.get("ActionsSuppressorWaitPeriod") or 0),
            timedelta(seconds=d.get("ActionsSuppressorExtensionPeriod") or 0))


def left_alarm_at(cw, s: Session, name: str, since: datetime, changed_at: datetime) -> datetime | None:
    """When the alarm last left ALARM at or after `since`, from its history (None: it did not).
    While the remote history cannot be read, its last change (`changed_at`) is taken as that time:
    holding actions a little longer is the safe side, and no request depends on the remote."""
    found: list[datetime] = []
    for row in s.scalars(select(HistoryOutbox).where(HistoryOutbox.account == cw.account,
                                                     HistoryOutbox.alarm_name == name,
                                                     HistoryOutbox.item_type == "StateUpdate")):
        data = json.loads(row.data)
        if (as_utc(row.ts) >= since and data.get("oldState", {}).get("stateValue") == "ALARM"
                and data.get("newState", {}).get("stateValue") != "ALARM"):
            found.append(as_utc(row.ts))
    try:
        with cw.pools.session(REMOTE) as r:
            remote = r.execute(LEFT_ALARM_SQL, {"account": cw.account, "name": name, "since": since}).scalar()
    except STORAGE_ERRORS as exc:
        log.warning("alarm history of suppressor %r unreadable, holding its composites' actions: %s", name, exc)
        remote = changed_at
    if remote is not None:
        found.append(as_utc(remote))
    return max(found) if found else None


def status(cw, s: Session, d: dict, state: str, entered: datetime, now: datetime) -> Suppression | None:
    """What suppresses a composite's actions at `now`: it is in `state` since `entered` (its
    definition `d`); None when nothing does (or it names no suppressor, or that alarm is gone)."""
    name = resolve(cw, d["ActionsSuppressor"]) if d.get("ActionsSuppressor") else None
    sup = s.get(Alarm, (cw.account, name)) if name else None
    if sup is None:
        return None
    if sup.state == "ALARM":
        return Suppression("Alarm")
    wait, extension = periods(d)
    if extension and as_utc(sup.state_updated_at) > now - extension:
        left = left_alarm_at(cw, s, name, now - extension, as_utc(sup.state_updated_at))
        if left is not None and now < left + extension:
            return Suppression("ExtensionPeriod", left + extension)
    if wait and state == "ALARM" and now < as_utc(entered) + wait:
        return Suppression("WaitPeriod", as_utc(entered) + wait)
    return None


def held_rows(s: Session, account: str | None = None, name: str | None = None) -> list[ActionOutbox]:
    stmt = select(ActionOutbox).where(ActionOutbox.done_at.is_(None), ActionOutbox.outcome == HELD)
    if account is not None:
        stmt = stmt.where(ActionOutbox.account == account, ActionOutbox.alarm_name == name)
    return list(s.scalars(stmt.order_by(ActionOutbox.id)))


def drop(rows: Iterable[ActionOutbox], now: datetime) -> None:
    for r in rows:
        r.done_at, r.outcome = now, DROPPED


def _group(rows: list[ActionOutbox]) -> dict[tuple[str, str], list[ActionOutbox]]:
    out: dict[tuple[str, str], list[ActionOutbox]] = {}
    for r in rows:
        out.setdefault((r.account, r.alarm_name), []).append(r)
    return out


def release(cw) -> int:
    """Release the held actions of composites nothing suppresses any more; how many rows were
    released. Only the newest held transition's rows run, and only if it is the transition into
    the composite's current state; the rest are dropped. Held rows of an alarm that is gone (or
    no longer a composite) are dropped."""
    now, released = cw.clock(), 0
    with cw.pools.session(LOCAL) as s:
        for (account, name), rows in _group(held_rows(s)).items():
            alarm = s.get(Alarm, (account, name))
            if alarm is None or not is_composite(alarm.definition):
                drop(rows, now)
                continue
            view = cw.for_account(account)
            if status(view, s, json.loads(alarm.definition), alarm.state, alarm.state_updated_at, now) is not None:
                continue
            newest = rows[-1].transition_id
            for r in rows:
                if r.transition_id == newest and json.loads(r.context)["new"] == alarm.state:
                    r.outcome = None
                    released += 1
                else:
                    drop([r], now)
    return released
