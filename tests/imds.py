"""What a launch hands a database instance, for tests of its boot program: the cloud side (instance
record, data volume, key secret, sealed user-data) and a minimal IMDSv2 on loopback."""
from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from eucadb.workflow import credentials, pki, userdata


class FakeImds:
    """IMDSv2 on loopback: a token is required for every GET."""

    def __init__(self, values: dict[str, str]):
        self.values, self.token = values, "tok-123"
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: str = "") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_PUT(self):
                ok = (self.path == "/latest/api/token"
                      and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
                self._send(200, imds.token) if ok else self._send(400)

            def do_GET(self):
                if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                    return self._send(401)
                value = imds.values.get(self.path.rstrip("/"))
                self._send(200, value) if value is not None else self._send(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def instance_metadata(instance_id: str, zone: str, private_ip: str, user_data: str,
                      role: str = "eucadb-db") -> dict[str, str]:
    """What IMDS answers for an instance launched with `user_data` and an instance role: the paths
    setup_db.py reads, role credentials valid for an hour (a moto cloud accepts any)."""
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "/latest/meta-data/instance-id": instance_id,
        "/latest/meta-data/placement/availability-zone": zone,
        "/latest/meta-data/local-ipv4": private_ip,
        "/latest/user-data": user_data,
        "/latest/meta-data/iam/security-credentials": role,
        f"/latest/meta-data/iam/security-credentials/{role}": json.dumps({
            "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "AKIDFROMIMDS",
            "SecretAccessKey": "fromimds", "Token": "tok", "Expiration": expires}),
    }


def launched_instance(admin: dict, deployment: str, *, endpoint_url: str, allowed_cidrs: Iterable[str],
                      instance_type: str = "t2.micro", device: str = "/dev/sdf", count: int = 1) -> dict:
    """What the launch workflow leaves in a cloud (boto3 client arguments `admin`) for one DB
    instance: `count` instance records, a volume, CA + server certificate, the key secret, fresh
    credentials and the user-data sealing them, with the cloud at `endpoint_url` as the instance
    reaches it."""
    ec2, sm = boto3.client("ec2", **admin), boto3.client("secretsmanager", **admin)
    made = ec2.run_instances(ImageId=ec2.describe_images()["Images"][0]["ImageId"], MinCount=count,
                             MaxCount=count, InstanceType=instance_type,
                             Placement={"AvailabilityZone": "us-east-1a"})["Instances"]
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    dns_name = f"db.{deployment}.eucadb.internal"
    ca_key, ca = pki.create_ca("eucadb test CA")
    key, cert = pki.issue_server_certificate(ca_key, ca, dns_name, 30)
    passphrase = credentials.new_password()
    secret_id = f"eucadb/{deployment}/server-key"
    sm.create_secret(Name=secret_id,
                     SecretString=json.dumps({"private_key": key, "key_passphrase": passphrase}))
    creds = credentials.generate()
    text = userdata.build_user_data(
        deployment=deployment, endpoint_url=endpoint_url, region="us-east-1", secret_id=secret_id,
        volume_id=volume, dns_name=dns_name, server_cert=cert, ca_cert=ca, allowed_cidrs=allowed_cidrs,
        instance_type=instance_type, device=device,
        sealed_credentials=credentials.seal(json.dumps(creds).encode(), cert, deployment))
    return {"ec2": ec2, "sm": sm, "instances": made, "volume": volume, "dns_name": dns_name, "ca": ca,
            "key": key, "passphrase": passphrase, "creds": creds, "secret_id": secret_id, "user_data": text}
