"""A real CloudWatch endpoint (tests and bench/): PostgreSQL remote schema (migrated, writer role with INSERT and
SELECT only), a SQLite local store, waitress in a thread, and an eucadb access key."""
from __future__ import annotations

import io
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore.model
import psycopg2
from alembic import command
from alembic.config import Config as AlembicConfig
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from cheroot.ssl.builtin import BuiltinSSLAdapter
from waitress import create_server

import eucadb.services.cloudwatch.migrations as cw_migrations
from eucadb.errors import ServiceUnavailable
from eucadb.pool.manager import PoolManager
from eucadb.pool.contexts import BY_NAME, Location
from eucadb.serve.http import ServeApp
from eucadb.serve.server import CherootServer
from eucadb.services.cloudwatch.api import MOUNT, CloudWatchApi
from eucadb.services.keys import AccessKeys
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.store import open_store
from eucadb.store.secretbox import SecretBox

WRITER = "cloudwatch_writer"


# The three wire protocols botocore speaks to CloudWatch, as `endpoint.client(protocol)` takes them.
PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]


def code_and_status(excinfo) -> tuple[str, int]:
    """The (error code, HTTP status) of a botocore ClientError, what AWS's answers are compared by."""
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def create_remote_db(server) -> str:
    """A fresh database with the real cloudwatch migrations applied as admin, writer granted I/S only."""
    name = "cw_" + uuid.uuid4().hex[:10]
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE {name}")
    cur.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{WRITER}'")
    if cur.fetchone() is None:
        cur.execute(f"CREATE ROLE {WRITER} LOGIN")
    conn.close()
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(cw_migrations.__file__).parent))
    engine = create_engine(server.url(name))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.exec_driver_sql("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {WRITER}")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {WRITER}")
    engine.dispose()
    return name


class RealPools(PoolManager):
    """PoolManager whose remote engine is a plain (non-TLS) engine on the test server."""

    def __init__(self, local: Engine, remote: Engine):
        super().__init__(local)
        self.local, self.remote, self.remote_ready = local, remote, True

    def engine(self, context: str) -> Engine:
        if BY_NAME[context].location is Location.LOCAL:
            return self.local
        if not self.remote_ready:
            raise ServiceUnavailable("remote database is not ready")
        return self.remote


@dataclass
class Endpoint:
    url: str
    key_id: str
    secret: str
    service: CloudWatch
    api: CloudWatchApi
    enabled: dict = field(default_factory=lambda: {"value": True})
    account: str = ""   # of the key (the installation's default account for the first one)

    def as_account(self, account: str, admin: bool = False) -> "Endpoint":
        """The same endpoint signed with a new key of `account` (its clients act for that account)."""
        issued = self.service.keys.create(f"tests {account}", account=account, admin=admin)
        return replace(self, key_id=issued.access_key_id, secret=issued.secret_access_key, account=account)

    def client(self, protocol: str | None = None, secret: str | None = None, region: str = "us-east-1",
               **config):
        """boto3 as installed; `protocol` moves one of the model's own protocols to the front of
        botocore's preference list, so its unmodified serializer and parser are exercised."""
        order = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
        if protocol:
            order = (protocol, *(p for p in order if p != protocol))
        with mock.patch.object(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order):
            client = boto3.client("cloudwatch", endpoint_url=self.url, region_name=region,
                                  aws_access_key_id=self.key_id, aws_secret_access_key=secret or self.secret,
                                  config=Config(**config) if config else None)
        assert protocol is None or client.meta.service_model.resolved_protocol == protocol
        return client

    def signed(self, body: bytes, headers: dict, path: str = "/", secret: str | None = None) -> AWSRequest:
        req = AWSRequest(method="POST", url=self.url + path, data=body, headers=headers)
        SigV4Auth(Credentials(self.key_id, secret or self.secret), "monitoring", "us-east-1").add_auth(req)
        return req

    def wsgi(self, req: AWSRequest) -> tuple[int, dict, bytes]:
        """Run a signed request through the WSGI app directly (fast; for fuzzing)."""
        parts = urlsplit(req.url)
        body = req.body or b""
        if isinstance(body, str):
            body = body.encode()
        environ = {"REQUEST_METHOD": req.method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
                   "SCRIPT_NAME": "", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   "HTTP_HOST": parts.netloc}
        for k, v in req.headers.items():
            if k.lower() == "content-type":
                environ["CONTENT_TYPE"] = v
            elif k.lower() != "content-length":
                environ["HTTP_" + k.upper().replace("-", "_")] = v
        out = {}

        def start_response(status, headers):
            out["status"], out["headers"] = int(status.split()[0]), {k.lower(): v for k, v in headers}
        data = b"".join(self.api(environ, start_response))
        return out["status"], out["headers"], data


def start_endpoint(pg_server, home: Path, server_kind: str = "waitress",
                   tls: BuiltinSSLAdapter | None = None) -> tuple[Endpoint, Callable[[], None]]:
    """The endpoint on a free port and the function that stops it and frees everything; `cheroot`
    (with `tls`, or plain) is the server `eucadb serve` runs when it terminates TLS."""
    store = open_store(f"sqlite:///{home / 'store.db'}")
    box = SecretBox(home / "secret.key")
    remote = create_engine(f"postgresql+psycopg2://{WRITER}@{pg_server.host}:{pg_server.port}/"
                           f"{create_remote_db(pg_server)}", pool_size=8)
    pools = RealPools(store.engine, remote)
    keys = AccessKeys(store, box)
    issued = keys.create("tests")
    enabled = {"value": True}
    service = CloudWatch(pools=pools, keys=keys, is_enabled=lambda: enabled["value"])
    api = CloudWatchApi(service)
    wsgi = ServeApp(None, None, extra={MOUNT: api})
    if server_kind == "cheroot":
        server = CherootServer(wsgi, "127.0.0.1", 0, 8, tls)
    else:
        server = create_server(wsgi, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.close()
        if server_kind != "cheroot":
            for channel in list(server._map.values()):   # idle keep-alive connections would hold the loop
                channel.close()
        thread.join(5)
        if server_kind != "cheroot":
            server.task_dispatcher.shutdown()
        remote.dispose()
        store.dispose()
    scheme = "https" if tls is not None else "http"
    return Endpoint(f"{scheme}://127.0.0.1:{server.effective_port}{MOUNT}", issued.access_key_id,
                    issued.secret_access_key, service, api, enabled, issued.account), stop
