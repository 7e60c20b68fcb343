#!/usr/bin/env python3
"""What IAM policy evaluation costs per request in the embedded cloud, evaluation on vs off.

One in-process embedded cloud API (moto + gateway + authenticating/authorizing front, as
`eucadb cloud up` runs it, on a loopback port), and boto3 clients making the calls the instance
and eucadb make most: the instance role's GetSecretValue of its own secret (identity + resource
policy), DescribeVolumes, S3 GetObject under its prefix (identity + bucket policy), and eucadb's
root DescribeVolumes. Each call is timed in rounds with `Authenticator.authorize` on, then off,
alternating, so the machine's noise falls on both; the evaluation alone (`_refused`) is timed too.

    .venv/bin/python bench/iam_authorization.py [--calls N] [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eucadb.cloud.local import moto_fixes, principals  # noqa: E402
from eucadb.cloud.local.auth import Authenticator  # noqa: E402
from eucadb.cloud.local.gateway import Gateway  # noqa: E402
from eucadb.cloud.local.layout import InstanceUser, Layout  # noqa: E402
from eucadb.workflow.steps.instance_role import TRUST, instance_policy  # noqa: E402
from eucadb.workflow.steps.key_delivery import resource_policy  # noqa: E402

REGION = "us-east-1"
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per call


def start(home: Path) -> tuple[Authenticator, str, dict, dict]:
    moto_fixes.apply()
    layout = Layout(home / "cloud", home / "data", InstanceUser.resolve("nobody"))
    layout.ensure()
    principals.ensure_root(layout, REGION)
    held = layout.root_credentials()
    server = make_server("127.0.0.1", 0, lambda e, s: app(e, s), threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://127.0.0.1:{server.server_port}"
    key, gateway = principals.gateway_principal()
    service_key, service = principals.ensure_service_key(layout)
    front = Gateway(DomainDispatcherApplication(create_backend_app), layout, endpoint, REGION, 5, (key, gateway.secret))
    app = Authenticator(front, {key: gateway, service_key: service}, front.s3.bucket_policy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = {"aws_access_key_id": held["cloud.access_key_id"], "aws_secret_access_key": held["cloud.secret_access_key"]}
    return app, endpoint, root, {"aws_access_key_id": service_key, "aws_secret_access_key": service.secret}


def setup(endpoint: str, root: dict, service: dict) -> dict[str, object]:
    """A deployment as eucadb makes it: the role and its policy, the secret and its policy, the bucket;
    the role's session as the EC2 service (`service`'s key) gets it for an instance."""
    def client(service: str, **creds: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **(creds or root))
    iam, sts = client("iam"), client("sts")
    role = iam.create_role(RoleName="eucadb-bench-db", Path="/eucadb/bench/",
                           AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    policy = instance_policy("bench", REGION, sts.get_caller_identity()["Arn"], "eucadb/bench/server-key",
                             "eucadb-bench-backups", "eucadb/bench")
    iam.put_role_policy(RoleName="eucadb-bench-db", PolicyName="eucadb-db-instance", PolicyDocument=json.dumps(policy))
    for i in range(30):  # a cloud with other deployments' roles in it
        iam.create_role(RoleName=f"other-{i}", AssumeRolePolicyDocument=json.dumps(TRUST))
    secrets = client("secretsmanager")
    arn = secrets.create_secret(Name="eucadb/bench/server-key", SecretString="k")["ARN"]
    secrets.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(resource_policy(role)))
    s3 = client("s3")
    s3.create_bucket(Bucket="eucadb-bench-backups")
    s3.put_bucket_policy(Bucket="eucadb-bench-backups", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::eucadb-bench-backups"}]}))
    s3.put_object(Bucket="eucadb-bench-backups", Key="eucadb/bench/db/wals/x", Body=b"x" * 1024)
    creds = client("sts", **service).assume_role(RoleArn=role, RoleSessionName="i-bench")["Credentials"]
    session = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
               "aws_session_token": creds["SessionToken"]}
    role_sm, role_ec2, role_s3 = client("secretsmanager", **session), client("ec2", **session), client("s3", **session)
    root_ec2 = client("ec2")
    return {
        "role GetSecretValue": lambda: role_sm.get_secret_value(SecretId="eucadb/bench/server-key"),
        "role DescribeVolumes": lambda: role_ec2.describe_volumes(),
        "role S3 GetObject": lambda: role_s3.get_object(Bucket="eucadb-bench-backups",
                                                        Key="eucadb/bench/db/wals/x")["Body"].read(),
        "root DescribeVolumes": lambda: root_ec2.describe_volumes(),
    }


def per_call(call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        app, endpoint, root, service = start(Path(home))
        calls = setup(endpoint, root, service)
        evaluation: list[float] = []
        refused = app._refused

        def timed(*a):
            started = time.perf_counter()
            try:
                return refused(*a)
            finally:
                evaluation.append(time.perf_counter() - started)
        app._refused = timed
        print(f"{'call':24} {'off ms':>8} {'on ms':>8} {'ratio on/off':>13} {'evaluation µs':>14}")
        for name, call in calls.items():
            call()  # warm the connection and the caches
            on, off = [], []
            for _ in range(args.rounds):
                app.authorize = False
                off.append(per_call(call, args.calls))
                app.authorize = True
                evaluation.clear()
                on.append(per_call(call, args.calls))
            cost = statistics.median(evaluation) * 1e6
            print(f"{name:24} {statistics.median(off) * 1e3:8.2f} {statistics.median(on) * 1e3:8.2f} "
                  f"{statistics.median(on) / statistics.median(off):13.3f} {cost:14.0f}")


if __name__ == "__main__":
    main()
