"""`eucadb report …` as an operator runs it: the report comes from the running server's API in each
format; accounts live in the local store; failures are one line and exit 1."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eucadb.bootstrap.services import ServiceState
from pg import free_port
from reporting_scenario import END, EXPECTED, SCENARIO, START

EUCADB = str(Path(sys.executable).parent / "eucadb")


def run(*args: str, home: Path, port: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
    env.update(EUCADB_HOME=str(home), EUCADB_SERVE_PORT=str(port))
    return subprocess.run([EUCADB, *args], capture_output=True, text=True, env=env, timeout=60)


def one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and text in result.stderr


@pytest.fixture
def server_port(service, serve_thread, make_api) -> int:
    """The API on the store of EUCADB_HOME=tmp_path, where the CLI keeps the key it signs with."""
    service.record(SCENARIO)
    return int(serve_thread(make_api(service)).rsplit(":", 1)[1])


def test_report_usage_in_every_format(tmp_path, server_port):
    base = ("report", "usage", "--start", START, "--end", END)
    as_csv = run(*base, home=tmp_path, port=server_port)
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["account"], r["resource_type"], r["item"], r["unit"], float(r["quantity"])) for r in table] == EXPECTED
    doc = json.loads(run(*base, "--format", "json", "--account", "B", home=tmp_path, port=server_port).stdout)
    assert doc["account"] == "B" and {r["account"] for r in doc["rows"]} == {"B"}
    page = run(*base, "--format", "html", home=tmp_path, port=server_port).stdout
    assert page.startswith("<!doctype html>") and "m1.small" in page


def test_report_usage_errors_are_one_line(tmp_path, server_port, service):
    one_line_error(run("report", "usage", "--start", "2026-01-01", "--end", END, home=tmp_path, port=server_port),
                   "--start='2026-01-01' has no timezone")
    one_line_error(run("report", "usage", "--start", END, "--end", START, home=tmp_path, port=server_port),
                   "must be after --start")
    service.state = lambda: ServiceState.NOTREADY
    one_line_error(run("report", "usage", "--start", START, "--end", END, home=tmp_path, port=server_port),
                   "reporting is NOTREADY")
    one_line_error(run("report", "usage", "--start", START, "--end", END, home=tmp_path, port=free_port()),
                   "no eucadb server answers at http://127.0.0.1:")


def test_accounts(tmp_path):
    port = free_port()
    assert run("report", "accounts", "add", "123456789012", "Acme", home=tmp_path, port=port).returncode == 0
    assert run("report", "accounts", "add-user", "123456789012", "alice", home=tmp_path, port=port).returncode == 0
    one_line_error(run("report", "accounts", "add", "999", "Acme", home=tmp_path, port=port), "already exists")
    one_line_error(run("report", "accounts", "add-user", "999", "bob", home=tmp_path, port=port), "no account 999")
    listed = json.loads(run("report", "accounts", "list", "-o", "json", home=tmp_path, port=port).stdout)
    assert [(a["id"], a["name"], a["users"]) for a in listed] == [("123456789012", "Acme", "alice")]
