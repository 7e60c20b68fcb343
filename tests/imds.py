"""A minimal IMDSv2 on loopback for boot-program tests: a token is required for every GET."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
