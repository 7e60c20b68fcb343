"""A per-instance IMDSv2-compatible metadata service, bound to the instance's own private IP.

Because each instance has its own loopback address, "which instance is asked about" is answered by
where the request arrived, as on a real hypervisor. "Who is asking" is answered by the kernel: only
the instance's own processes get an answer, anyone else (another local user, another instance) 403
(peers.py). IMDSv2: PUT /latest/api/token (with
X-aws-ec2-metadata-token-ttl-seconds, 1..21600) returns a token; every GET must carry it in
X-aws-ec2-metadata-token, else 401. botocore finds it through AWS_EC2_METADATA_SERVICE_ENDPOINT.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from eucadb.cloud.local.identity import Identities, InstanceView
from eucadb.cloud.local.peers import Owner
from eucadb.errors import CloudError

log = logging.getLogger(__name__)
MAX_TTL = 21600

Tree = dict[str, Any]  # a directory: name -> str | bytes | Tree | callable returning one


def meta_data(view: InstanceView, identities: Identities) -> Tree:
    """The latest/meta-data tree (directories end in '/' in listings, as on EC2)."""
    hostname = "ip-" + view.private_ip.replace(".", "-") + ".ec2.internal"
    devices = {"ami": view.root_device.removeprefix("/dev/"), "root": view.root_device}
    devices.update({f"ebs{i}": d.removeprefix("/dev/") for i, d in enumerate(view.devices, 1)})
    tree: Tree = {
        "ami-id": view.image_id, "instance-id": view.instance_id, "instance-type": view.instance_type,
        "local-ipv4": view.private_ip, "local-hostname": hostname, "hostname": hostname,
        "placement": {"availability-zone": view.zone, "region": view.region},
        "block-device-mapping": devices,
    }
    if view.role is not None:
        role = view.role
        tree["iam"] = {
            "info": lambda: json.dumps({"Code": "Success", "LastUpdated": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "InstanceProfileArn": role.profile_arn,
                "InstanceProfileId": role.profile_id}),
            "security-credentials": {role.name: lambda: json.dumps(
                {k: v for k, v in identities.credentials(view).items() if not k.startswith("_")})},
        }
    return tree


def identity_document(view: InstanceView) -> str:
    return json.dumps({"accountId": view.account_id, "architecture": "x86_64",
                       "availabilityZone": view.zone, "imageId": view.image_id,
                       "instanceId": view.instance_id, "instanceType": view.instance_type,
                       "privateIp": view.private_ip, "region": view.region, "version": "2017-09-30"})


def lookup(tree: Tree, parts: list[str]) -> str | bytes | None:
    """Walk the tree; a directory answers its listing, a leaf its value, a miss None."""
    node: Any = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if callable(node):
        node = node()
    if isinstance(node, dict):
        return "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())
    return node


class MetadataServer:
    """One instance's metadata endpoint; `view` is swapped atomically when the instance changes.

    `owner` says which processes may ask. `clock` times token TTLs: monotonic, so a wall-clock step
    cannot expire or extend every token; tests pass a clock they advance themselves."""

    def __init__(self, view: InstanceView, identities: Identities, port: int, owner: Owner,
                 clock: Callable[[], float] = time.monotonic):
        self.view = view
        self.identities = identities
        self.owner = owner
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((view.private_ip, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"imds-{view.instance_id}")
        self._thread.start()

    def issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + ttl
        return token

    def valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._tokens.get(token, 0) > self._clock()

    def answer(self, path: str) -> str | bytes | None:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] != ["latest"]:
            return "latest" if not parts else None
        view = self.view
        routes: dict[str, Callable[[], Any]] = {
            "meta-data": lambda: lookup(meta_data(view, self.identities), parts[2:]),
            "user-data": lambda: view.user_data if len(parts) == 2 else None,
            "dynamic": lambda: lookup({"instance-identity": {"document": identity_document(view)}}, parts[2:]),
        }
        if len(parts) == 1:
            return "dynamic\nmeta-data\nuser-data" if view.user_data is not None else "dynamic\nmeta-data"
        route = routes.get(parts[1])
        return route() if route else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(service: MetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"

        def log_message(self, fmt: str, *args: Any) -> None:  # keep the realizer's log readable
            log.debug("imds %s: " + fmt, service.view.instance_id, *args)

        def _send(self, status: int, body: str | bytes = b"", ctype: str = "text/plain") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _foreign(self) -> bool:
            """Refuse (403) a connection that is not from the instance's own processes."""
            if service.owner.connected(self.client_address[:2], self.server.server_address[:2]):
                return False
            log.warning("imds %s: refused a connection from a process that is not the instance's",
                        service.view.instance_id)
            self._send(403, "Forbidden")
            return True

        def do_PUT(self) -> None:
            if self._foreign():
                return None
            if [p for p in self.path.split("/") if p] != ["latest", "api", "token"]:
                return self._send(404, "Not Found")
            try:
                ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
            except ValueError:
                return self._send(400, "Bad Request")
            if not 1 <= ttl <= MAX_TTL or "X-Forwarded-For" in self.headers:
                return self._send(400, "Bad Request")
            token = service.issue_token(ttl)
            self.send_response(200)
            self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
            self.send_header("Content-Length", str(len(token)))
            self.end_headers()
            self.wfile.write(token.encode())

        def do_GET(self) -> None:
            if self._foreign():
                return None
            if not service.valid(self.headers.get("X-aws-ec2-metadata-token")):
                return self._send(401, "Unauthorized")
            try:
                body = service.answer(self.path)
            except (ClientError, BotoCoreError, CloudError) as exc:
                log.warning("imds %s: %s failed: %s", service.view.instance_id, self.path, exc)
                return self._send(500, "Internal Server Error")
            if body is None:
                return self._send(404, "Not Found")
            self._send(200, body, "application/octet-stream" if isinstance(body, bytes) else "text/plain")

    return Handler
