"""A usage report over all time is streamed: the events come through a server-side cursor a batch at a
time and the response leaves in chunks as rows are computed, so memory does not grow with the table
(it once read every event and built the whole report in memory first: 14 MB in the issue)."""
from __future__ import annotations

import json
import tracemalloc
from urllib.parse import urlencode

import pytest

from eucadb.services.reporting.api import PREFIX, ReportingApi
from eucadb.services.reporting.events import parse_events, parse_time
from eucadb.services.reporting.render import FORMATS
from eucadb.services.reporting.usage import compute_usage
from reporting_scenario import ev
from signing import environ

KEY = None   # an admin key, set by the autouse fixture below


@pytest.fixture(autouse=True)
def _signing_key(admin_key):
    global KEY
    KEY = admin_key

MAX_CHUNK = 256 * 1024     # a chunk is one write, never the report (the CSV below is ~150 KB, JSON ~1 MB)
ALL_TIME = {"start": "1970-01-01T00:00:00Z", "end": "9998-01-01T00:00:00Z"}


def record_volumes(service, first: int, count: int) -> None:
    """`count` volumes (one report row each) and as many instances of 3 types (3 rows per account)."""
    for low in range(first, first + count, 5000):
        batch = []
        for i in range(low, min(low + 5000, first + count)):
            batch.append(ev("2026-01-01T00:00:00Z", f"acct-{i % 7}", "volume", f"vol-{i:07d}", "create", size_gib=1))
            batch.append(ev("2026-01-01T00:00:00Z", f"acct-{i % 7}", "instance", f"i-{i:07d}", "create",
                            instance_type=f"m1.{('small', 'large', 'xlarge')[i % 3]}"))
        service.record(batch)


def get(app: ReportingApi, fmt: str) -> tuple[str, dict, object]:
    """The WSGI call itself: status, headers and the body iterable, not yet consumed."""
    seen = {}
    body = app(environ(KEY, "GET", PREFIX + "/usage", urlencode({**ALL_TIME, "format": fmt})),
               lambda status, headers: seen.update(status=status, headers=dict(headers)))
    return seen["status"], seen["headers"], body


def test_report_leaves_in_chunks_and_equals_the_whole_document(service, clean_remote, make_api):
    record_volumes(service, 0, 3000)
    app = make_api(service)
    for fmt in ("json", "csv", "html"):
        status, headers, body = get(app, fmt)
        chunks = list(body)
        assert status == "200 OK" and "Content-Length" not in headers
        assert len(chunks) > 1 and max(len(c) for c in chunks) <= MAX_CHUNK, [len(c) for c in chunks]
        whole = FORMATS[fmt](service.usage(parse_time(ALL_TIME["start"]), parse_time(ALL_TIME["end"])))
        assert b"".join(chunks).decode() == whole
    rows = json.loads(b"".join(get(app, "json")[2]))["rows"]
    assert len(rows) == 3000 + 7 * 3 and rows[0]["account"] == "acct-0"
    assert rows[-1]["item"] == "vol-0002995"     # acct-6's last volume


def peak_while_streaming(app: ReportingApi) -> tuple[int, int]:
    """(peak bytes allocated, bytes sent) while the response is consumed and thrown away."""
    tracemalloc.start()
    try:
        sent = sum(len(chunk) for chunk in get(app, "csv")[2])
        return tracemalloc.get_traced_memory()[1], sent
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_events(service, clean_remote, make_api):
    """Quadruple the events (and rows): the peak must stay flat. Reading them all first, as the report
    once did, quadruples it (measured before streaming: 9.5 MiB → 37 MiB; streamed: 1.6 MiB both)."""
    app = make_api(service)
    record_volumes(service, 0, 5000)
    small, small_sent = peak_while_streaming(app)
    record_volumes(service, 5000, 15000)
    big, big_sent = peak_while_streaming(app)
    assert big_sent > 3.5 * small_sent
    print(f"peak {small / 2**20:.1f} MiB for {small_sent} bytes, {big / 2**20:.1f} MiB for {big_sent} bytes")
    assert big < 1.5 * small, (small, big)
    assert big < 8 * 2 ** 20, big


def test_database_order_is_the_report_order(service_on_new_db):
    """The report is computed in one pass over the database's order, so that order must be Python's
    (code points), not the database's collation — here ICU English, where 'B' sorts between 'b' and 'é'
    — or one account's rows would split and repeat."""
    service = service_on_new_db("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'")
    ids = ["b", "B", "a", "é", "Z", "_x", "a b", "ä", "𝔸"]
    events = [ev("2026-01-01T00:00:00Z", account, rtype, f"{rid}-{rtype}", "create", **attrs)
              for account in ids for rid in ids
              for rtype, attrs in (("volume", {"size_gib": 1}), ("instance", {"instance_type": rid}))]
    service.record(events)
    start, end = parse_time("2026-01-01T00:00:00Z"), parse_time("2026-01-02T00:00:00Z")
    expected = compute_usage(parse_events(events), start, end)
    assert [r.as_dict() for r in service.usage_rows(start, end)] == [r.as_dict() for r in expected]


def test_a_database_failure_before_the_first_chunk_is_still_a_503(service, make_api):
    """The stream's first chunk is computed before the status line, so an unready pool is answered."""
    service.pools.remote = None
    status, headers, body = get(make_api(service), "json")
    doc = json.loads(b"".join(body))
    assert status.startswith("503") and doc["error"]["code"] == "ServiceUnavailable"
    assert "remote database is not ready" in doc["error"]["message"]
