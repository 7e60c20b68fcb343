"""compute_usage against hand-computed numbers, and the CSV/JSON/HTML renderings of the same report."""
from __future__ import annotations

import csv
import io
import json

import pytest

from eucadb.services.reporting.events import parse_events, parse_time
from eucadb.services.reporting.render import FORMATS, report_doc
from eucadb.services.reporting.usage import compute_usage
from reporting_scenario import END, EXPECTED, SCENARIO, START, ev, rows_of

T0, T1 = parse_time(START), parse_time(END)


def doc_for(events: list[dict], account: str | None = None, names: dict | None = None) -> dict:
    parsed = [e for e in parse_events(events) if account is None or e.account == account]
    return report_doc(compute_usage(parsed, T0, T1, names), T0, T1, account)


def test_scenario_matches_hand_computed_numbers():
    assert rows_of(doc_for(SCENARIO)) == EXPECTED


def test_one_account_only():
    assert rows_of(doc_for(SCENARIO, "B")) == [r for r in EXPECTED if r[0] == "B"]


@pytest.mark.parametrize("events, expected", [
    ([], []),
    # created and deleted inside, at the same instant: nothing
    ([ev("2026-01-01T05:00:00Z", "A", "instance", "i", "create", instance_type="t"),
      ev("2026-01-01T05:00:00Z", "A", "instance", "i", "delete")], []),
    # spans the whole range and beyond on both sides
    ([ev("2025-01-01T00:00:00Z", "A", "instance", "i", "create", instance_type="t"),
      ev("2027-01-01T00:00:00Z", "A", "instance", "i", "delete")], [("A", "instance", "t", "instance-hours", 24.0)]),
    # instance type changed by a usage event halfway
    ([ev("2026-01-01T00:00:00Z", "A", "instance", "i", "create", instance_type="small"),
      ev("2026-01-01T12:00:00Z", "A", "instance", "i", "usage", instance_type="large")],
     [("A", "instance", "large", "instance-hours", 12.0), ("A", "instance", "small", "instance-hours", 12.0)]),
    # duplicate create does not double count
    ([ev("2026-01-01T00:00:00Z", "A", "volume", "v", "create", size_gib=2),
      ev("2026-01-01T00:00:00Z", "A", "volume", "v", "create", size_gib=2)], [("A", "volume", "v", "GiB-hours", 48.0)]),
    # same id in two accounts is two resources
    ([ev("2026-01-01T12:00:00Z", "A", "snapshot", "s", "create", size_gib=1),
      ev("2026-01-01T18:00:00Z", "B", "snapshot", "s", "create", size_gib=1)],
     [("A", "snapshot", "s", "GiB-hours", 12.0), ("B", "snapshot", "s", "GiB-hours", 6.0)]),
])
def test_edge_cases(events, expected):
    assert rows_of(doc_for(events)) == expected


def test_formats_show_the_same_numbers():
    doc = doc_for(SCENARIO, names={"A": "Acme <&> Co"})
    assert json.loads(FORMATS["json"](doc))["rows"] == doc["rows"]
    table = list(csv.DictReader(io.StringIO(FORMATS["csv"](doc))))
    assert [(r["account"], r["resource_type"], r["item"], r["unit"], float(r["quantity"])) for r in table] == EXPECTED
    assert table[0]["account_name"] == "Acme <&> Co" and table[-1]["account_name"] == ""
    page = FORMATS["html"](doc)
    assert page.startswith("<!doctype html>") and page.count("<tr>") == len(EXPECTED) + 1
    assert "Acme &lt;&amp;&gt; Co" in page and "<td>240.0</td>" in page
