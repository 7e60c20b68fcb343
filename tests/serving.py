"""What the end-to-end tests of `eucadb serve` share: a real server process and its status, and
direct logins to the database it runs on (to write rows and count them afterwards)."""
from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import psycopg2

from e2e import EUCADB
from eucadb.workflow.credentials import CLOUDWATCH
from eucadb.workflow.deployment import current_deployment

W = "services.database.worker."
FAST = {"EUCADB_LOOP_INTERVAL": "1", "EUCADB_RETRY_TIMEOUT": "3", "EUCADB_LEASE_TTL": "8"}


class Server:
    """`eucadb serve` as a subprocess on `port`, with short loop, retry and lease timings."""

    def __init__(self, env, port: int, **environ: str):
        self.env, self.port = env, port
        self.log = open(env.home / f"serve-{port}.log", "ab")
        self.proc = subprocess.Popen([EUCADB, "serve"], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env.environ(EUCADB_SERVE_PORT=str(port), **{**FAST, **environ}))

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def status(self) -> dict:
        code, body = self.get("/status")
        return json.loads(body) if code == 200 else {}

    def wait(self, predicate, timeout: float, seen: list | None = None) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            doc = self.status()
            if doc and seen is not None:
                seen.append((doc.get("loop", {}).get("sentence"),
                             tuple(s["state"] for s in doc["services"].values())))
            if doc and predicate(doc):
                return doc
            time.sleep(0.3)
        raise AssertionError(f"timed out; last status: {json.dumps(self.status(), default=str)[:2000]}")

    def log_text(self) -> str:
        self.log.flush()
        return (self.env.home / f"serve-{self.port}.log").read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        return rc


def enabled(doc) -> bool:
    return doc["ready"] and doc["database"]["endpoint"] is not None


def writer_connect(env, address: str):
    app = env.app()
    deployment = current_deployment(app.store)
    endpoint = app.vault(deployment).db_endpoint(address)
    writer = app.vault(deployment).db_logins()[CLOUDWATCH]
    return psycopg2.connect(**endpoint.connect_args(writer["user"], writer["password"],
                                                    "eucalyptus_cloudwatch_backend"))


def insert_rows(env, address: str, first: int, count: int) -> None:
    with writer_connect(env, address) as conn:
        cur = conn.cursor()
        for i in range(first, first + count):
            cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit)"
                        " VALUES (%s, now(), 1, 1, 1, 1, 'committed-by-test')", (i,))


def wait_for_partitions(env, address: str, timeout: float = 30) -> list[str]:
    """Names of the daily partitions of metric_datapoints (created by the loop as admin)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with writer_connect(env, address) as conn:
            cur = conn.cursor()
            cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'metric_datapoints' "
                        "AND c.relname LIKE 'metric_datapoints_p%'")
            names = [r[0] for r in cur.fetchall()]
        if names:
            return names
        time.sleep(0.5)
    return []


def count_rows(env, address: str) -> int:
    with writer_connect(env, address) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM metric_datapoints WHERE unit = 'committed-by-test'")
        return cur.fetchone()[0]


def postgres_pids(cloud_env, instance_id: str) -> list[int]:
    """Host pids of every PostgreSQL process a realized instance runs (`cloud_env`: the home that ran
    `cloud up`, which keeps the pid records; the instance's own PID namespace hides them otherwise)."""
    from eucadb.cloud.local.layout import Layout
    from eucadb.cloud.local.procs import PidRecord
    record = PidRecord.load(Layout.from_config(cloud_env.app().config).instance_pidfile(instance_id))
    assert record is not None, f"{instance_id} is not realized"
    return sorted(p for p in record.members() if _comm(p) == "postgres")


def postmaster_pid(cloud_env, instance_id: str) -> int:
    """The one of them whose parent is not PostgreSQL: the postmaster."""
    found = [p for p in postgres_pids(cloud_env, instance_id) if _comm(_parent(p)) != "postgres"]
    assert len(found) == 1, f"postmaster of {instance_id}: {found}"
    return found[0]


def _comm(pid: int) -> str:
    from pathlib import Path
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    from pathlib import Path
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


class MetricWriter:
    """PutMetricData in a loop from a thread, one datapoint per call, counting what was acknowledged:
    afterwards, the stored SampleCount must be at least `acked` (nothing acknowledged lost) and at
    most `attempted` (nothing invented)."""

    def __init__(self, env, port: int, namespace: str = "Heal", pause: float = 0.05):
        import threading

        import boto3
        from botocore.config import Config
        key = json.loads(env.run("credentials", "create", "-o", "json").stdout)
        self.cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}/services/CloudWatch",
                               region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                               aws_secret_access_key=key["secret_access_key"],
                               config=Config(retries={"max_attempts": 1}, read_timeout=10, connect_timeout=3))
        self.namespace, self.pause = namespace, pause
        self.acked = self.attempted = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MetricWriter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from datetime import datetime, timezone

        from botocore.exceptions import BotoCoreError, ClientError
        while not self._stop.is_set():
            self.attempted += 1
            try:
                self.cw.put_metric_data(Namespace=self.namespace, MetricData=[
                    {"MetricName": "Writes", "Value": 1.0, "Timestamp": datetime.now(timezone.utc)}])
                self.acked += 1
            except (ClientError, BotoCoreError):
                self.refused += 1
            time.sleep(self.pause)

    def stored(self, since) -> int:
        from datetime import datetime, timedelta, timezone
        now = datetime.now(timezone.utc)
        stats = self.cw.get_metric_statistics(Namespace=self.namespace, MetricName="Writes",
                                              StartTime=since - timedelta(minutes=1),
                                              EndTime=now + timedelta(minutes=1),
                                              Period=3600 * 24, Statistics=["SampleCount"])
        return int(sum(p["SampleCount"] for p in stats["Datapoints"]))


def reporting_post(url: str, events: list, key: dict, region: str = "us-east-1") -> urllib.request.Request:
    """POST /services/Reporting/events signed (SigV4, service `reporting`) with `key` as
    `eucadb credentials create -o json` prints it (an admin key writes for any account)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    body = json.dumps(events).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key["access_key_id"], key["secret_access_key"]), "reporting", region).add_auth(request)
    return urllib.request.Request(url, data=body, method="POST", headers=dict(request.headers.items()))
