"""The HTTP API through a real waitress server: ingestion round trip, reports, 503, 4xx with clear
messages; and a fuzz of POST bodies that must never produce a 5xx. Requests are signed with an admin
key (which acts for every account); who may do what: test_api_auth.py."""
from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eucadb.bootstrap.services import ServiceState
from eucadb.services.reporting.api import PREFIX
from reporting_scenario import END, EXPECTED, SCENARIO, START, rows_of
from signing import environ, signed_headers

KEY = None   # set by the `base` fixture: the admin key every call here signs with


def call(base: str, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None, key=None) -> tuple[int, str, bytes]:
    url = base + PREFIX + path
    req = urllib.request.Request(url, data=body, method=method, headers=signed_headers(
        key or KEY, method, url, body, headers={"Content-Type": "application/json", **(headers or {})}))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def usage_path(**params) -> str:
    return "/usage?" + urlencode({"start": START, "end": END, **params})


@pytest.fixture
def base(service, serve_thread, make_api, admin_key) -> str:
    global KEY
    KEY = admin_key
    return serve_thread(make_api(service))


def test_round_trip_and_report_formats(base):
    code, _, body = call(base, "POST", "/events", json.dumps(SCENARIO).encode())
    assert (code, json.loads(body)) == (200, {"recorded": len(SCENARIO)})
    code, ctype, body = call(base, "GET", usage_path())
    assert code == 200 and ctype == "application/json" and rows_of(json.loads(body)) == EXPECTED
    code, ctype, body = call(base, "GET", usage_path(account="A", format="csv"))
    table = list(csv.DictReader(io.StringIO(body.decode())))
    assert ctype.startswith("text/csv") and [r["item"] for r in table] == ["m1.large", "m1.small", "vol-1", "snap-1"]
    code, ctype, body = call(base, "GET", usage_path(format="html"))
    assert code == 200 and ctype.startswith("text/html") and b"vol-3" in body


@pytest.mark.parametrize("method, path, body, code, message", [
    ("POST", "/events", b"{not json", 400, "the body is not valid JSON"),
    ("POST", "/events", b'"x"', 400, "JSON list"),
    ("POST", "/events", json.dumps([{**SCENARIO[0], "resource_type": "vm"}]).encode(), 400,
     "event 0: resource_type='vm' is not one of"),
    ("GET", "/usage?" + urlencode({"start": "2026-01-01", "end": END}), None, 400, "has no timezone"),
    ("GET", "/usage?" + urlencode({"end": "2026-01-01T00:00:00Z"}), None, 400, "parameter start is required"),
    ("GET", usage_path(format="pdf"), None, 400, "format='pdf' is not one of csv, json, html"),
    ("GET", usage_path(colour="red"), None, 400, "unknown parameter(s) colour"),
    ("GET", "/usage?" + urlencode({"start": END, "end": START}), None, 400, "must be after start"),
    ("GET", "/events", None, 405, "GET is not allowed on /events"),
    ("GET", "/nothing", None, 404, "no Reporting resource /nothing"),
])
def test_errors_are_clear_json(base, method, path, body, code, message):
    got, ctype, payload = call(base, method, path, body)
    assert got == code and ctype == "application/json"
    assert message in json.loads(payload)["error"]["message"]


def test_body_limits(service, serve_thread, make_api, admin_key):
    base = serve_thread(make_api(service, max_body=100))
    code, _, payload = call(base, "POST", "/events", json.dumps(SCENARIO).encode(), key=admin_key)
    assert code == 413 and json.loads(payload)["error"]["code"] == "LimitExceeded"


@pytest.mark.parametrize("state", [ServiceState.DISABLED, ServiceState.NOTREADY, ServiceState.DEGRADED])
def test_503_unless_enabled(base, service, state):
    service.state = lambda: state
    for method, path, body in (("POST", "/events", json.dumps(SCENARIO).encode()), ("GET", usage_path(), None)):
        code, ctype, payload = call(base, method, path, body)
        error = json.loads(payload)["error"]
        assert (code, ctype, error["code"]) == (503, "application/json", "ServiceUnavailable")
        assert f"reporting is {state.value}" in error["message"]


odd_text = st.text(alphabet="0123456789²٣１\x00Z:T-", max_size=12)   # what fuzzing found: NUL, odd digits
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
                           | st.integers(-10 ** 400, 10 ** 400) | odd_text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=10)
near_events = st.lists(st.fixed_dictionaries(
    {"ts": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "x", "2026-01-01T00:00:00Z\x00"])
     | json_values, "account": st.text(max_size=6) | odd_text, "resource_id": st.text(max_size=6) | odd_text,
     "resource_type": st.sampled_from(["instance", "volume", "snapshot", "address", "bucket", "vm"]),
     "event": st.sampled_from(["create", "usage", "delete", "?"])},
    optional={"attributes": st.dictionaries(st.sampled_from(["size_gib", "instance_type", "ip", "bytes", "x"]),
                                            json_values, max_size=2)}), max_size=3)
bodies = st.one_of(st.binary(max_size=40), near_events.map(lambda v: json.dumps(v).encode()),
                   json_values.map(lambda v: json.dumps(v).encode()),
                   st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * (n % 2) * n))   # nested past the stack


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_posts_never_5xx(service, make_api, admin_key, body):
    """In-process WSGI calls (the same app waitress runs) keep the fuzz fast; the DB is real."""
    app = make_api(service)
    seen = []
    out = b"".join(app(environ(admin_key, "POST", PREFIX + "/events", body=body),
                       lambda status, headers: seen.append(status)))
    assert seen[0][:3] in ("200", "400"), (seen, out)
    doc = json.loads(out)
    assert "recorded" in doc or (doc["error"]["message"] and "Traceback" not in doc["error"]["message"])
