"""The Reporting service: record usage events (remote, append-only) and compute usage reports.

It owns no engines: it asks `pool/` (anything with `engine(context)` / `session(context)`) for the
`reporting_backend` context on every call, so a pool swap to a new database endpoint needs nothing
here, and it refuses work with ServiceUnavailable whenever the bootstrapper has not ENABLED it.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterable, Iterator, Protocol

import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from eucadb.states import ServiceState
from eucadb.errors import DatabaseError, ServiceUnavailable, UserError
from eucadb.services.reporting.accounts import account_names
from eucadb.services.reporting.events import EventKind, UsageEvent, parse_events
from eucadb.services.reporting.render import report_doc
from eucadb.services.reporting.usage import ORDER, TYPE_ORDER, UsageRow, stream_usage

log = logging.getLogger(__name__)
REMOTE, LOCAL = "reporting_backend", "reporting"
COPY_SQL = ("COPY usage_events (ts, account, resource_type, resource_id, event, attributes) "
            "FROM STDIN WITH (FORMAT csv)")
# Every event of the range's resources that can still matter: those before `end`, minus those followed
# by a delete that is itself before `start` (such a resource's earlier life ended before the range).
USAGE_SQL = text("""
    SELECT e.ts, e.account, e.resource_type, e.resource_id, e.event, e.attributes
      FROM usage_events e
     WHERE e.ts < :end
       AND (CAST(:account AS text) IS NULL OR e.account = :account)
       AND NOT EXISTS (SELECT 1 FROM usage_events d
                        WHERE d.resource_id = e.resource_id AND d.account = e.account
                          AND d.resource_type = e.resource_type AND d.event = 'delete'
                          AND d.ts > e.ts AND d.ts < :start)
  ORDER BY e.account COLLATE "C", {types}, e.resource_id COLLATE "C", e.ts, {kinds}""".format(
    # usage.report_order, in SQL: "C" compares code points as Python does; the CASEs come from the same tables
    types="CASE e.resource_type " + " ".join(f"WHEN '{t}' THEN {i}" for t, i in TYPE_ORDER.items()) + " END",
    kinds="CASE e.event " + " ".join(f"WHEN '{k.value}' THEN {i}" for k, i in ORDER.items()) + " END"))
FETCH = 2000   # rows per round trip of the server-side cursor: what a report holds of the table at once


class Pools(Protocol):
    def engine(self, context: str) -> Engine: ...
    def session(self, context: str) -> ContextManager[Session]: ...


class ReportingService:
    def __init__(self, pools: Pools, state: Callable[[], ServiceState]):
        self.pools, self.state = pools, state

    def require_enabled(self) -> None:
        state = self.state()
        if state is not ServiceState.ENABLED:
            raise ServiceUnavailable(f"reporting is {state.value}, not ENABLED; try again later")

    def record(self, events: Iterable[UsageEvent | dict[str, Any]]) -> int:
        """Validate the whole batch, then append it with one COPY in one transaction (all or nothing)."""
        self.require_enabled()
        batch = parse_events(list(events))
        if not batch:
            return 0
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for e in batch:
            writer.writerow((e.ts.isoformat(), e.account, e.resource_type, e.resource_id, e.event.value,
                             json.dumps(dict(e.attributes), sort_keys=True)))
        buf.seek(0)
        try:
            with self.pools.engine(REMOTE).begin() as conn:
                with conn.connection.driver_connection.cursor() as cur:
                    cur.copy_expert(COPY_SQL, buf)
        except (SQLAlchemyError, psycopg2.Error) as exc:
            raise DatabaseError(f"recording {len(batch)} usage events: {_reason(exc)}") from None
        return len(batch)

    def events(self, start: datetime, end: datetime, account: str | None = None) -> Iterator[UsageEvent]:
        """The events the report on [start, end) needs, in `usage.report_order`, read FETCH rows at a
        time through a server-side cursor (an all-time report once read every event into memory)."""
        try:
            with self.pools.engine(REMOTE).connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=FETCH).execute(
                    USAGE_SQL, {"start": start, "end": end, "account": account})
                for ts, acct, rtype, rid, kind, attrs in result:
                    yield UsageEvent(ts, acct, rtype, rid, EventKind(kind), attrs or {})
        except SQLAlchemyError as exc:
            raise DatabaseError(f"reading usage events: {_reason(exc)}") from None

    def usage_rows(self, start: datetime, end: datetime, account: str | None = None) -> Iterator[UsageRow]:
        """The report's rows for [start, end), optionally for one account, as they are computed.

        Checks run now; the database is read as the rows are consumed."""
        self.require_enabled()
        if end <= start:
            raise UserError(f"end {end.isoformat()} must be after start {start.isoformat()}")
        return stream_usage(self.events(start, end, account), start, end, self._names())

    def usage(self, start: datetime, end: datetime, account: str | None = None) -> dict[str, Any]:
        """The usage report document for [start, end), optionally for one account."""
        return report_doc(self.usage_rows(start, end, account), start, end, account)

    def _names(self) -> dict[str, str]:
        """Account names from the local context; a report by bare ids beats no report."""
        try:
            with self.pools.session(LOCAL) as session:
                return account_names(session)
        except (SQLAlchemyError, DatabaseError) as exc:
            log.warning("account names unavailable, reporting ids only: %s", exc)
            return {}


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__

