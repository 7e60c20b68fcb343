"""Alarm history on the remote append-only database: one INSERT per event, read newest first."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text

from eucadb.services.cloudwatch.datapoints import REMOTE

INSERT_SQL = text("INSERT INTO alarm_history (alarm_name, ts, item_type, summary, data) "
                  "VALUES (:name, :ts, :kind, :summary, CAST(:data AS jsonb))")


def record(pools, name: str, ts: datetime, kind: str, summary: str, data: dict[str, Any]) -> None:
    with pools.session(REMOTE) as s:
        s.execute(INSERT_SQL, {"name": name, "ts": ts, "kind": kind, "summary": summary,
                               "data": json.dumps(data, default=str)})


def query(pools, name: str | None, kind: str | None, start: datetime | None, end: datetime | None,
          newest_first: bool, offset: int, limit: int) -> list[dict]:
    clauses, args = [], {"offset": offset, "limit": limit}
    for column, key, value, op in (("alarm_name", "name", name, "="), ("item_type", "kind", kind, "="),
                                   ("ts", "start", start, ">="), ("ts", "end", end, "<")):
        if value is not None:
            clauses.append(f"{column} {op} :{key}")
            args[key] = value
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    order = "DESC" if newest_first else "ASC"
    sql = text(f"SELECT alarm_name, ts, item_type, summary, data::text FROM alarm_history {where} "
               f"ORDER BY ts {order}, alarm_name LIMIT :limit OFFSET :offset")
    with pools.session(REMOTE) as s:
        rows = s.execute(sql, args).all()
    return [{"AlarmName": n, "AlarmType": "MetricAlarm", "Timestamp": ts, "HistoryItemType": k,
             "HistorySummary": summary, "HistoryData": data} for n, ts, k, summary, data in rows]
