"""Alarm history: staged in a local outbox with the alarm change, delivered to the remote table.

Why an outbox: the alarm definition and state live in the local store, the history on the remote
append-only database. Writing both directly could commit the alarm and then fail on the remote
(PutMetricAlarm answered 503 although the alarm had changed). Staging the event in the same local
transaction as the change makes the two one outcome; `deliver` copies staged events to the remote
right after the request (best effort) and again on every evaluator pass. A delivery that is cut off
between the remote commit and the local delete is repeated harmlessly: each event has an id and the
remote insert skips ids it already holds (ON CONFLICT DO NOTHING needs only the INSERT privilege).

Every event carries its alarm's account and is read back only by that account; events written
before tenancy have no account (remote migration cw0004) and belong to the installation's default
account, the one tenant there was.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.datapoints import REMOTE
from eucadb.services.cloudwatch.errors import STORAGE_ERRORS
from eucadb.services.cloudwatch.shapes import as_utc
from eucadb.services.cloudwatch.tables import HistoryOutbox

log = logging.getLogger(__name__)
BATCH = 500
# HistoryData "type" of a configuration update, as AWS writes it ({"type":"Create","createdAlarm":...})
CONFIGURATION_TYPES = {"created": "Create", "updated": "Update"}
INSERT_SQL = text("INSERT INTO alarm_history (event_id, account, alarm_name, ts, item_type, summary, data) "
                  "VALUES (CAST(:event_id AS uuid), :account, :name, :ts, :kind, :summary, CAST(:data AS jsonb)) "
                  "ON CONFLICT (event_id, ts) DO NOTHING")


def stage(s: Session, account: str, name: str, ts: datetime, kind: str, summary: str,
          data: dict[str, Any]) -> None:
    """Add one event to the outbox inside the caller's local transaction (commits with the change)."""
    s.add(HistoryOutbox(account=account, event_id=str(uuid.uuid4()), alarm_name=name, ts=ts, item_type=kind,
                        summary=summary, data=json.dumps(data, default=str)))


def deliver(pools, batch: int = BATCH) -> int:
    """Copy every staged event to the remote history, oldest first; the number delivered.
    Raises the storage error when the remote (or local) database cannot be reached."""
    total = 0
    while True:
        with pools.session(LOCAL) as s:
            rows = [{"id": r.id, "event_id": r.event_id, "account": r.account, "name": r.alarm_name,
                     "ts": as_utc(r.ts), "kind": r.item_type, "summary": r.summary, "data": r.data}
                    for r in s.scalars(select(HistoryOutbox).order_by(HistoryOutbox.id).limit(batch))]
        if not rows:
            return total
        with pools.session(REMOTE) as s:
            s.execute(INSERT_SQL, rows)
        with pools.session(LOCAL) as s:
            s.execute(delete(HistoryOutbox).where(HistoryOutbox.id.in_([r["id"] for r in rows])))
        total += len(rows)
        if len(rows) < batch:
            return total


def deliver_soon(pools) -> None:
    """Deliver now if the databases answer; otherwise the events wait for the evaluator's pass.
    The request that staged them has already succeeded, so a failure here is only logged."""
    try:
        deliver(pools)
    except STORAGE_ERRORS as exc:
        log.warning("alarm history delivery postponed: %s", exc)


def pending(pools) -> int:
    with pools.session(LOCAL) as s:
        return len(s.scalars(select(HistoryOutbox.id)).all())


# An event is a composite alarm's when the alarm is a composite now or its data holds an AlarmRule
# (the configuration events of a composite since deleted): the remote table keeps no alarm type.
COMPOSITE_SQL = "(alarm_name = ANY(:composites) OR data::text LIKE :composite_mark)"


def query(pools, account: str, legacy: bool, name: str | None, kind: str | None, start: datetime | None,
          end: datetime | None, newest_first: bool, offset: int, limit: int,
          composites: tuple[bool, list[str]] | None = None) -> list[dict]:
    """One account's events; `legacy`: the account also owns the events from before tenancy.
    `composites`: (True: only composite alarms' events, False: only the others; the names of the
    account's composite alarms), or None for every event."""
    owner = "(account = :account OR account IS NULL)" if legacy else "account = :account"
    clauses, args = [owner], {"account": account, "offset": offset, "limit": limit}
    for column, key, value, op in (("alarm_name", "name", name, "="), ("item_type", "kind", kind, "="),
                                   ("ts", "start", start, ">="), ("ts", "end", end, "<")):
        if value is not None:
            clauses.append(f"{column} {op} :{key}")
            args[key] = value
    if composites is not None:
        clauses.append(COMPOSITE_SQL if composites[0] else f"NOT {COMPOSITE_SQL}")
        args.update(composites=list(composites[1]), composite_mark='%"AlarmRule":%')
    where = "WHERE " + " AND ".join(clauses)
    order = "DESC" if newest_first else "ASC"
    sql = text(f"SELECT alarm_name, ts, item_type, summary, data::text FROM alarm_history {where} "
               f"ORDER BY ts {order}, alarm_name LIMIT :limit OFFSET :offset")
    with pools.session(REMOTE) as s:
        rows = s.execute(sql, args).all()
    return [{"AlarmName": n, "AlarmType": "MetricAlarm", "Timestamp": ts, "HistoryItemType": k,
             "HistorySummary": summary, "HistoryData": data} for n, ts, k, summary, data in rows]
