"""CI (.ci/wheel_job): after `eucadb up` from the installed wheel, use both services' remote schemas.

Run with the fresh venv's python, outside the checkout. Exits non-zero with the reason on any
failure: eucadb imported from anywhere but that venv, a service not ENABLED, the CloudWatch
round trip (PutMetricData → GetMetricStatistics, SigV4 with a key from `eucadb credentials create`)
or a usage-event POST failing — the last two need the remote tables the wheel's migrations create.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import eucadb
from eucadb.config import load

EUCADB = str(Path(sys.executable).parent / "eucadb")


def check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"wheel smoke: FAILED: {what}")
    print(f"wheel smoke: ok: {what}", flush=True)


def cli(*args: str) -> str:
    done = subprocess.run([EUCADB, *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"wheel smoke: FAILED: eucadb {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    check(Path(eucadb.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()),
          f"eucadb is imported from the fresh venv ({eucadb.__file__})")
    status = json.loads(cli("status", "-o", "json"))
    states = {name: svc["state"] for name, svc in status["services"].items()}
    check(status["ready"] and set(states.values()) == {"ENABLED"}, f"services ENABLED: {states}")

    config = load()
    base = f"http://{config['serve.host']}:{config['serve.port']}"
    key = json.loads(cli("credentials", "create", "--description", "wheel smoke", "-o", "json"))
    cw = boto3.client("cloudwatch", endpoint_url=f"{base}/services/CloudWatch", region_name=config.serve_region,
                      aws_access_key_id=key["access_key_id"], aws_secret_access_key=key["secret_access_key"])
    namespace, now = f"WheelSmoke/{uuid.uuid4().hex[:8]}", datetime.now(timezone.utc).replace(microsecond=0)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Timestamp": now, "Value": v, "Unit": "Milliseconds"} for v in (10.0, 30.0)])
    points = cw.get_metric_statistics(Namespace=namespace, MetricName="Latency", Period=60,
                                      StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                      Statistics=["Sum", "SampleCount"])["Datapoints"]  # PutMetricData is synchronous
    check(len(points) == 1 and points[0]["Sum"] == 40.0 and points[0]["SampleCount"] == 2.0,
          f"CloudWatch PutMetricData → GetMetricStatistics round trip: {points}")

    event = [{"ts": now.isoformat().replace("+00:00", "Z"), "account": "111", "resource_type": "volume",
              "resource_id": "vol-wheelsmoke", "event": "create", "attributes": {"size_gib": 1}}]
    admin = json.loads(cli("credentials", "create", "--admin", "--description", "wheel smoke", "-o", "json"))
    url, body = f"{base}/services/Reporting/events", json.dumps(event).encode()
    signed = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(admin["access_key_id"], admin["secret_access_key"]), "reporting",
              config.serve_region).add_auth(signed)
    request = urllib.request.Request(url, data=body, headers=dict(signed.headers.items()), method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        recorded = json.loads(resp.read())
    check(recorded == {"recorded": 1}, f"Reporting event recorded: {recorded}")


if __name__ == "__main__":
    main()
