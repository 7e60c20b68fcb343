"""log.level=DEBUG must not turn library debug output (request parameters) into a secret leak."""
from __future__ import annotations

import logging

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from eucadb.logs import LIBRARY_FLOORS, configure_logging

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
