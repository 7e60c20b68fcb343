"""Running the Barman Cloud clients from the control plane, against the deployment's backup bucket.

The instance runs them too (scripts/setup_db.py builds the same argv: it cannot import eucadb).
Here they run as subprocesses with eucadb's own cloud credentials in their environment — never in
their arguments, which any local user can read.
"""
from __future__ import annotations

import os
import subprocess
import sys

from eucadb.config import Config
from eucadb.workflow.deployment import Names

SERVER_NAME = "db"    # Barman's server name under the prefix: PREFIX/db/wals, PREFIX/db/base


def argv(client: str, names: Names, endpoint: str | None, *options: str) -> list[str]:
    """`barman.clients.<client>` for s3://bucket/prefix; `endpoint` None means AWS itself."""
    cloud = ["--endpoint-url", endpoint, "--addressing-style", "path"] if endpoint else []
    return [sys.executable, "-m", f"barman.clients.{client}", "--cloud-provider", "aws-s3", *cloud,
            *options, f"s3://{names.backup_bucket}/{names.backup_prefix}", SERVER_NAME]


def environ(config: Config) -> dict[str, str]:
    """Our environment plus the cloud credentials and region from eucadb's configuration."""
    env = dict(os.environ)
    for key, var in (("cloud.access_key_id", "AWS_ACCESS_KEY_ID"),
                     ("cloud.secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                     ("cloud.region", "AWS_DEFAULT_REGION")):
        if config[key]:
            env[var] = str(config[key])
    return env


def run(config: Config, cmd: list[str], timeout: float, late: str, failed: str) -> subprocess.CompletedProcess:
    """Run a Barman client here with eucadb's credentials in its environment; EucadbError `late`
    when it does not finish in `timeout` s, `failed: <its last stderr line>` when it fails."""
    from eucadb.errors import EucadbError
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environ(config),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EucadbError(late) from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EucadbError(f"{failed}: {detail}")
    return done


def endpoint_of(config: Config) -> str | None:
    url = config["cloud.endpoint_url"]
    return None if url in (None, "", "default") else str(url)
