"""The API as `eucadb serve` mounts it: ServeApp routes everything under /services/Reporting to it."""
from __future__ import annotations

import json
import urllib.request

from eucadb.serve.http import ServeApp
from eucadb.services.reporting.api import PREFIX, ReportingApi
from reporting_scenario import END, EXPECTED, SCENARIO, START, rows_of


def test_round_trip_through_serve_app(service, serve_thread):
    base = serve_thread(ServeApp(None, None, extra={PREFIX: ReportingApi(service)}))
    req = urllib.request.Request(base + PREFIX + "/events", data=json.dumps(SCENARIO).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read()) == {"recorded": len(SCENARIO)}
    with urllib.request.urlopen(f"{base}{PREFIX}/usage?start={START}&end={END}", timeout=10) as resp:
        assert rows_of(json.loads(resp.read())) == EXPECTED
