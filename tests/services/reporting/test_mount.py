"""The API as `eucadb serve` mounts it: ServeApp routes everything under /services/Reporting to it."""
from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlencode

from eucadb.serve.http import ServeApp
from eucadb.services.reporting.api import PREFIX
from reporting_scenario import END, EXPECTED, SCENARIO, START, rows_of
from signing import signed_headers


def test_round_trip_through_serve_app(service, serve_thread, make_api, admin_key):
    base = serve_thread(ServeApp(None, None, extra={PREFIX: make_api(service)}))
    url, body = base + PREFIX + "/events", json.dumps(SCENARIO).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=signed_headers(
        admin_key, "POST", url, body, headers={"Content-Type": "application/json"}))
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read()) == {"recorded": len(SCENARIO)}
    url = f"{base}{PREFIX}/usage?" + urlencode({"start": START, "end": END})   # encoded, as SigV4 signs it
    with urllib.request.urlopen(urllib.request.Request(url, headers=signed_headers(admin_key, "GET", url)),
                                timeout=10) as resp:
        assert rows_of(json.loads(resp.read())) == EXPECTED
