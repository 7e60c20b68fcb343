"""Fuzz findings on the Reporting API, kept as regressions, through a real waitress server: each once
answered 500 (a RecursionError or psycopg2's "A string literal cannot contain NUL"); each must get
the README's answer for bad input — "400 says what is wrong" — as {"error": {"code", "message"}}."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from eucadb.services.reporting.api import PREFIX
from reporting_scenario import END, START, ev
from signing import signed_headers

KEY = None   # the admin key of the `base` fixture


def call(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    url = base + PREFIX + path
    req = urllib.request.Request(url, data=body, method=method,
                                 headers=signed_headers(KEY, method, url, body,
                                                        headers={"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        payload = err.read()
        return err.code, json.loads(payload) if err.headers.get("Content-Type") == "application/json" else {}


@pytest.fixture
def base(service, serve_thread, make_api, admin_key) -> str:
    global KEY
    KEY = admin_key
    return serve_thread(make_api(service))


def event(**fields) -> bytes:
    return json.dumps([{**ev("2026-01-01T00:00:00Z", "A", "volume", "vol-1", "create", size_gib=1), **fields}]).encode()


@pytest.mark.parametrize("body, message", [
    (b"[" * 100_000, "nested deeper than"),
    (b"[" * 1_000 + b"]" * 1_000, "nested deeper than"),
    (event().replace(b'"size_gib": 1', b'"size_gib": 1' + b"0" * 400), "out of range"),
    (event().replace(b'"size_gib": 1', b'"size_gib": 1e400'), "out of range"),
    (event().replace(b'"size_gib": 1', b'"size_gib": NaN'), "NaN is not a JSON value"),
    (event(account="a\x00b"), "account='a\\x00b' must be at most 256 printable characters"),
    (event(resource_id="\x00"), "resource_id="),
    (event(ts="2026-01-01T00:00:00Z\x00"), "must be an ISO 8601 string"),
], ids=["100000-brackets", "1000-deep", "int-10e400", "float-1e400", "nan", "nul-account", "nul-resource",
        "nul-ts"])
def test_bad_bodies_are_400(base, clean_remote, body, message):
    code, doc = call(base, "POST", "/events", body)
    assert code == 400, (code, doc)
    assert doc["error"]["code"] == "InvalidParameterValue"
    assert message in doc["error"]["message"]
    assert call(base, "GET", "/usage?" + urlencode({"start": START, "end": END}))[1]["rows"] == []


@pytest.mark.parametrize("params, message", [
    ({"account": "a\x00b"}, "account='a\\x00b' must be at most 256 printable characters"),
    ({"account": "x" * 257}, "must be at most 256 printable characters"),
    ({"start": START + "\x00"}, "start="),
])
def test_bad_report_parameters_are_400(base, params, message):
    code, doc = call(base, "GET", "/usage?" + urlencode({"start": START, "end": END, **params}))
    assert code == 400, (code, doc)
    assert doc["error"]["code"] == "InvalidParameterValue"
    assert message in doc["error"]["message"]
