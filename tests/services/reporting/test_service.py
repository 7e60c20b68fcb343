"""ReportingService on real PostgreSQL: COPY ingestion as reporting_writer, the report computed from the
stored events, gating by service state, and the writer's INSERT/SELECT-only privileges."""
from __future__ import annotations

import psycopg2
import pytest

from eucadb.bootstrap.services import ServiceState
from eucadb.errors import ServiceUnavailable, UserError
from eucadb.services.reporting.accounts import add_account
from eucadb.services.reporting.events import InvalidEvent, parse_time
from reporting_scenario import END, EXPECTED, SCENARIO, START, ev, rows_of

T0, T1 = parse_time(START), parse_time(END)


def count(remote_db) -> int:
    with psycopg2.connect(remote_db.admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM usage_events")
        return cur.fetchone()[0]


def test_recorded_events_give_the_hand_computed_report(service, clean_remote, local_store):
    with local_store.session() as s:
        add_account(s, "A", "Acme")
    assert service.record(SCENARIO) == len(SCENARIO)
    doc = service.usage(T0, T1)
    assert rows_of(doc) == EXPECTED
    assert {r["account"]: r["account_name"] for r in doc["rows"]} == {"A": "Acme", "B": ""}
    assert rows_of(service.usage(T0, T1, "B")) == [r for r in EXPECTED if r[0] == "B"]
    assert service.usage(T0, T1, "nobody")["rows"] == []


def test_a_bad_event_rejects_the_whole_batch(service, clean_remote):
    with pytest.raises(InvalidEvent, match="event 1: "):
        service.record([SCENARIO[0], {**SCENARIO[0], "event": "explode"}])
    assert count(clean_remote) == 0
    with pytest.raises(UserError, match="must be after start"):
        service.usage(T1, T0)


@pytest.mark.parametrize("state", [s for s in ServiceState if s is not ServiceState.ENABLED])
def test_unavailable_unless_enabled(service, clean_remote, state):
    service.state = lambda: state
    with pytest.raises(ServiceUnavailable, match=f"reporting is {state.value}"):
        service.record(SCENARIO[:1])
    with pytest.raises(ServiceUnavailable):
        service.usage(T0, T1)
    assert count(clean_remote) == 0


def test_unavailable_while_the_pool_is_not_ready(service):
    service.pools.remote = None
    with pytest.raises(ServiceUnavailable, match="remote database is not ready"):
        service.record(SCENARIO[:1])


def test_large_batch_in_one_copy(service, clean_remote):
    batch = [ev("2026-01-01T00:00:00Z", f"acct-{i % 7}", "volume", f"vol-{i}", "create", size_gib=1)
             for i in range(5000)]
    assert service.record(batch) == 5000
    doc = service.usage(T0, T1)
    assert len(doc["rows"]) == 5000 and sum(r["quantity"] for r in doc["rows"]) == pytest.approx(5000 * 24)


@pytest.mark.parametrize("statement", ["UPDATE usage_events SET account = 'x'", "DELETE FROM usage_events",
                                       "TRUNCATE usage_events", "DROP TABLE usage_events"])
def test_writer_can_only_insert_and_select(service, clean_remote, statement):
    service.record(SCENARIO[:2])
    with psycopg2.connect(clean_remote.writer_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM usage_events")
        assert cur.fetchone()[0] == 2
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(statement)
    assert count(clean_remote) == 2
