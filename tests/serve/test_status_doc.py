"""The status document without a running server, its HTML and its metrics (local store, no cloud)."""
from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eucadb.app import App
from eucadb.bootstrap.lease import LeaderLease
from eucadb.bootstrap.services import ServiceRegistry, ServiceState
from eucadb.config import load
from eucadb.serve import status
from eucadb.serve.commands import print_status
from eucadb.serve.html import render_html
from eucadb.serve.http import ServeApp


@pytest.fixture
def app(home, monkeypatch):
    monkeypatch.setenv("EUCADB_SERVE_PORT", "18773")
    return App(load())


@pytest.fixture
def killed_leader(app):
    """What `kill -9` of a serving leader leaves: ENABLED records and a lease renewed 5 minutes ago."""
    renewed = time.time() - 300
    assert LeaderLease(app.store, ttl=app.config["lease.ttl"], holder="elsewhere:1:abc",
                       clock=lambda: renewed).acquire()
    registry = ServiceRegistry(app.store)
    for name in ("cloudwatch", "reporting"):
        registry.set(name, ServiceState.ENABLED, "database healthy")
    return renewed


def test_without_a_server_the_states_are_stale_and_nothing_is_ready(app, killed_leader, capsys):
    doc = status.build(app)
    assert doc["ready"] is False
    assert doc["server"]["running"] is False and doc["server"]["url"] == "http://127.0.0.1:18773"
    assert doc["server"]["as_of_source"] == "last leader lease renewal"
    assert doc["server"]["states_as_of"] == status._iso(killed_leader)
    print_status(json.loads(json.dumps(doc, default=str)))
    out = capsys.readouterr().out
    assert "READY" not in out.replace("NOT READY", "")
    assert "server:    not running (nothing answers at http://127.0.0.1:18773)" in out
    assert f"as of {status._iso(killed_leader)} (last leader lease renewal)" in out
    assert "ENABLED (last recorded)" in out


def test_after_a_clean_stop_the_newest_service_record_dates_the_states(app, killed_leader):
    LeaderLease(app.store, ttl=1, holder="elsewhere:1:abc").release()
    doc = status.build(app)
    assert doc["server"]["as_of_source"] == "last service state change"
    newest = max(s["since"] for s in doc["services"].values())
    assert doc["server"]["states_as_of"][:19] == newest[:19]


def test_status_names_the_service_endpoints(app, capsys):
    doc = status.build(app)
    assert doc["endpoints"] == {"cloudwatch": "http://127.0.0.1:18773/services/CloudWatch",
                                "reporting": "http://127.0.0.1:18773/services/Reporting"}
    print_status(doc)
    out = capsys.readouterr().out
    assert "endpoint:  cloudwatch  http://127.0.0.1:18773/services/CloudWatch" in out
    assert "endpoint:  reporting   http://127.0.0.1:18773/services/Reporting" in out
    assert "http://127.0.0.1:18773/services/CloudWatch" in render_html(doc)


def test_html_renders_values_not_python_reprs(app, killed_leader):
    doc = status.build(app)
    doc["instance"] = {"instance_id": "i-0123", "private_ip": "127.80.1.4", "state": "running"}
    doc["pools"] = {"cloudwatch_backend": {"size": 10, "checked_out": 1, "overflow": 0, "checked_in": 9}}
    page = render_html(doc)
    assert "{'" not in page and "[{" not in page and "None" not in page
    assert "<th>instance_id</th><td>i-0123</td>" in page
    assert "<td>cloudwatch_backend</td>" in page and "server not running" in page


def test_metrics_parse_and_name_the_states(app, killed_leader):
    serve = ServeApp(app, None)
    captured = {}
    body = b"".join(serve({"PATH_INFO": "/metrics"}, lambda code, headers: captured.update(code=code)))
    assert captured["code"] == "200 OK"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("eucadb_service_state", (("service", "cloudwatch"),))] == 3
    assert samples[("eucadb_service_status", (("eucadb_service_status", "ENABLED"), ("service", "cloudwatch")))] == 1
    assert samples[("eucadb_service_status", (("eucadb_service_status", "DEGRADED"), ("service", "cloudwatch")))] == 0
    assert samples[("eucadb_ready", ())] == 0
    assert ServeApp(app, None).registry is not serve.registry


def test_over_the_concurrency_limit_the_api_answers_503_in_its_protocol_and_probes_still_answer(app):
    import xml.etree.ElementTree as ET
    from io import BytesIO
    from eucadb.services.cloudwatch.api import MOUNT, CloudWatchApi
    serve = ServeApp(app, None, extra={MOUNT: CloudWatchApi(service=None)}, api_slots=1)
    body = b"Action=PutMetricData&Version=2010-08-01&Namespace=N"
    environ = {"PATH_INFO": MOUNT + "/", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": BytesIO(body)}
    seen = {}
    with serve.admission.enter() as admitted:   # a request stuck on the database holds the only slot
        assert admitted
        answer = b"".join(serve(environ, lambda code, headers: seen.update(code=code)))
        assert seen["code"].startswith("503")
        error = ET.fromstring(answer).find(".//{*}Error")
        assert error.find("{*}Code").text == "ServiceUnavailable"
        b"".join(serve({"PATH_INFO": "/healthz"}, lambda code, headers: seen.update(code=code)))
        assert seen["code"] == "200 OK"
    assert serve.admission.shed == 1 and serve.admission.in_flight == 0
