"""log.level=DEBUG must not turn library debug output (request parameters) into a secret leak."""
from __future__ import annotations

import logging

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from eucadb.logs import LIBRARY_FLOORS, RateLimitedLog, configure_logging

SECRET = "-----BEGIN PRIVATE KEY----- not-a-real-key-but-a-marker-4711"


@pytest.fixture
def restore_levels():
    saved = {name: logging.getLogger(name).level for name in LIBRARY_FLOORS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def put_secret() -> None:
    """A real botocore call that logs its parameters at DEBUG, then fails to connect (port 9 on
    loopback: discard, nothing listens)."""
    client = boto3.client("secretsmanager", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(EndpointConnectionError):
        client.put_secret_value(SecretId="eucadb/x/server-key", SecretString=SECRET)


def test_debug_level_keeps_request_parameters_out_of_the_log(caplog, restore_levels):
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("eucadb.workflow").debug("own debug line")
    put_secret()
    assert "own debug line" in caplog.text       # eucadb's own loggers do log at DEBUG
    assert SECRET not in caplog.text


def test_without_the_floor_botocore_would_log_the_secret(caplog, restore_levels):
    """The counter-check: the floor is what keeps it out (botocore really does print it)."""
    configure_logging("DEBUG")
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    put_secret()
    assert SECRET in caplog.text


def test_quieter_levels_stay_quieter(restore_levels):
    configure_logging("ERROR")
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.ERROR
    assert logging.getLogger("sqlalchemy.engine").getEffectiveLevel() == logging.ERROR


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_one_line_per_cause_per_minute_with_a_count(caplog):
    clock = Clock()
    refusals = RateLimitedLog(logging.getLogger("eucadb.test.refusals"), window=60, clock=clock)
    caplog.set_level(logging.WARNING, "eucadb.test.refusals")
    for _ in range(10_959):
        refusals.refused("ServiceUnavailable: cloudwatch is DISABLED")
    refusals.refused("ServiceUnavailable: reporting is DISABLED")
    assert caplog.messages == ["refused a request: ServiceUnavailable: cloudwatch is DISABLED",
                               "refused a request: ServiceUnavailable: reporting is DISABLED"]
    clock.now += 61                      # the minute is over: the next refusal writes its count
    refusals.refused("ServiceUnavailable: cloudwatch is DISABLED")
    assert caplog.messages[2:] == [
        "refused 10,959 requests in the last 60 s: ServiceUnavailable: cloudwatch is DISABLED",
        "refused a request: ServiceUnavailable: cloudwatch is DISABLED"]   # a lone refusal: no count line
    refusals.refused("ServiceUnavailable: cloudwatch is DISABLED")
    refusals.flush()                     # shutdown
    assert caplog.messages[4:] == ["refused 2 requests in the last 60 s: ServiceUnavailable: cloudwatch is DISABLED"]


def test_distinct_causes_are_bounded(caplog):
    refusals = RateLimitedLog(logging.getLogger("eucadb.test.refusals"), clock=Clock(), max_causes=3)
    caplog.set_level(logging.WARNING, "eucadb.test.refusals")
    for n in range(1000):
        refusals.refused(f"database error {n}")
    assert len(caplog.messages) == 4 and caplog.messages[-1] == "refused a request: other causes"


def test_a_log_file_rotates_by_size(tmp_path):
    log_file = tmp_path / "serve.log"
    try:
        configure_logging("INFO", log_file=log_file, max_bytes=2000, backups=2)
        for n in range(200):
            logging.getLogger("eucadb.test").info("line %d %s", n, "x" * 50)
    finally:
        configure_logging("INFO")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serve.log", "serve.log.1", "serve.log.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert "line 199" in log_file.read_text()


DAEMON = """
import logging, sys
from eucadb.config import load
from eucadb.cloud.local.daemon import log_to_own_file
log_to_own_file(load(), "api")
for i in range(400):
    logging.getLogger("eucadb.test").warning("logged line %d %s", i, "x" * 40)
    print(f"printed line {i}", file=sys.stderr if i % 2 else sys.stdout, flush=True)
"""


def test_a_cloud_daemon_log_rotates_with_its_prints_and_stays_private(tmp_path):
    """The daemon's output is appended to its log by whoever started it (procs.spawn), as here."""
    import os
    import subprocess
    import sys
    logs = tmp_path / "cloud" / "logs"
    logs.mkdir(parents=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}, "EUCADB_HOME": str(tmp_path),
           "EUCADB_LOG_MAX_BYTES": "4000", "EUCADB_LOG_BACKUPS": "2"}
    with open(logs / "api.log", "ab") as out:
        subprocess.run([sys.executable, "-c", DAEMON], stdout=out, stderr=subprocess.STDOUT, env=env, check=True,
                       timeout=60, umask=0o022)
    files = sorted(logs.iterdir())
    assert [f.name for f in files] == ["api.log", "api.log.1", "api.log.2"]
    for f in files:
        assert f.stat().st_size < 4000 + 200, f"{f.name} grew past the bound"
        assert f.stat().st_mode & 0o077 == 0, f"{f.name} is readable by others"
    current = (logs / "api.log").read_text()
    assert "printed line 399" in current and "logged line 399" in current
