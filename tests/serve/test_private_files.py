"""The files of a running `eucadb serve` are its owner's alone (the attacker test of the issue found the
store, its WAL and the logs world-readable): $EUCADB_HOME 0700, the store with -wal/-shm, logs, pid
file and secret.key 0600 — including what an older install left 0644 — and another local user
(`nobody`) cannot read any of them. The same real server serves HTTPS with a certificate from the
deployment's CA (serve.tls=auto), and a flood of refused requests is logged as one counted line."""
from __future__ import annotations

import os
import pwd
import stat
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import text

from eucadb.app import App
from eucadb.config import load
from eucadb.files import secure_home
from eucadb.serve.lifecycle import serve_record_path, start_server
from eucadb.cloud.local.procs import PidRecord, stop
from eucadb.store import open_store
from pg import free_port

PRIVATE = ["store.db", "store.db-wal", "store.db-shm", "secret.key", "serve.log", "serve.out", "serve.pid",
           "eucadb.yaml"]
FLOOD = 300
PYTHON = "/usr/bin/python3"   # one `nobody` may run (the venv's may sit under root's home)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def older_install(home: Path) -> None:
    """What an install before this change left: everything world-readable."""
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    store = open_store(f"sqlite:///{home / 'store.db'}")
    with store.engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    store.dispose()
    (home / "serve.log").write_text("an old log line\n")
    for path in home.iterdir():
        os.chmod(path, 0o644)


def wait_ready(url: str, cafile: Path, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if cafile.exists():
                with urllib.request.urlopen(url, timeout=2, context=_context(cafile)) as resp:
                    if resp.status == 200:
                        return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {deadline}s")


def _context(cafile: Path):
    import ssl
    return ssl.create_default_context(cafile=str(cafile))


def read_as_nobody(path: Path) -> str:
    """Try to read `path` as `nobody` in a child process; its outcome as one word."""
    user = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    probe = ("import sys\ntry:\n    open(sys.argv[1], 'rb').read(1)\n    print('read')\n"
             "except PermissionError:\n    print('denied')\n")
    done = subprocess.run([PYTHON, "-c", probe, str(path)], preexec_fn=drop, capture_output=True,
                          text=True, timeout=30, cwd="/")
    return done.stdout.strip() or done.stderr.strip()


@pytest.fixture
def served(monkeypatch):
    """A real `eucadb serve` (no cloud configured: it serves, its services stay NOTREADY) over TLS."""
    root = Path(tempfile.mkdtemp(prefix="eucadb-files-", dir="/tmp"))   # not pytest's 0700 basetemp:
    os.chmod(root, 0o755)                                                # `nobody` must reach the home
    home = root / "home"
    older_install(home)
    port = free_port()
    for key in [k for k in os.environ if k.startswith("EUCADB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EUCADB_HOME", str(home))
    (home / "eucadb.yaml").write_text(f"serve:\n  port: {port}\n  tls: auto\n")
    config = load()
    secure_home(config)          # what every eucadb command does first
    app = App(config)
    record = start_server(app)
    try:
        wait_ready(f"https://127.0.0.1:{port}/healthz", home / "serve-ca.pem")
        yield app, home, port
    finally:
        stop(record, timeout=30)
        app.close()
        shutil.rmtree(root, ignore_errors=True)


def test_serve_files_are_private_and_refusals_are_aggregated(served):
    app, home, port = served
    ca = home / "serve-ca.pem"
    # TLS with the deployment's CA; boto3 verifies with that bundle (the service answers: not ready)
    cw = boto3.client("cloudwatch", endpoint_url=f"https://127.0.0.1:{port}/services/CloudWatch",
                      region_name="us-east-1", verify=str(ca), aws_access_key_id="AKEUNOTAKEY",
                      aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        cw.list_metrics()
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    # a flood of refused requests
    for _ in range(FLOOD - 1):
        request = urllib.request.Request(f"https://127.0.0.1:{port}/services/CloudWatch", data=b"Action=ListMetrics")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10, context=_context(ca))
    # modes: the home, the store with its WAL, the key, logs and pid file (the old 0644 ones tightened)
    assert mode(home) == 0o700
    for name in PRIVATE:
        assert mode(home / name) == 0o600, name
    if os.geteuid() == 0:
        for name in PRIVATE:   # even with the file's own mode opened up, the home keeps nobody out
            assert read_as_nobody(home / name) == "denied", name
        os.chmod(home, 0o755)
        try:
            for name in PRIVATE:
                assert read_as_nobody(home / name) == "denied", name
        finally:
            os.chmod(home, 0o700)
    record = PidRecord.load(serve_record_path(app))
    stop(record, timeout=30)        # a clean stop writes the counts still open
    log = (home / "serve.log").read_text()
    refusals = [line for line in log.splitlines() if "eucadb.refusals" in line]
    cause = "cloudwatch ServiceUnavailable: The CloudWatch service is not enabled; see `eucadb status`."
    assert refusals[0].endswith(f"refused a request: {cause}"), refusals
    assert refusals[1].endswith(f"refused {FLOOD:,} requests in the last 60 s: {cause}"), refusals
    assert len(refusals) == 2, refusals
