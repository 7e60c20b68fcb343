"""Real PostgreSQL 15 servers as the database instance serves itself: TLS with a certificate from
eucadb's own PKI, scram-sha-256 logins over TCP only through hostssl, the writer roles and the remote
databases of every remote context; and a hot standby of one of them (a real replica)."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from pg import PG_BIN, PgServer, free_port, give_to_postgres, launch, new_root, run_as, start_pg

from eucadb.pool.contexts import REMOTE
from eucadb.pool.endpoint import Endpoint
from eucadb.pool.manager import PoolSettings, RemoteTarget
from eucadb.workflow import pki

DNS_NAME = "db.test.eucadb.internal"
# context name -> (user, password): the writer role of each remote context (test-only passwords)
LOGINS = {ctx.name: (ctx.writer, f"{ctx.writer}-test-password") for ctx in REMOTE}
# TCP takes TLS + SCRAM only (as on the instance); the Unix socket is the test's admin door
HBA = """\
local all all trust
local replication all trust
hostssl all all 127.0.0.1/32 scram-sha-256
"""
TLS_OPTIONS = {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_pem: str
    key_pem: str


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate for DNS_NAME, made with eucadb's own PKI; the CA file in `directory`."""
    ca_key, ca_cert = pki.create_ca("eucadb test CA", days=2)
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, DNS_NAME, days=1)
    ca_file = directory / "ca.crt"
    ca_file.write_text(ca_cert)
    return Pki(ca_file, cert, key)


def start_tls_pg(material: Pki) -> PgServer:
    """A server with the certificate, the HBA above, the writer roles and the remote databases."""
    def prepare(server: PgServer) -> None:
        for name, text, mode in (("server.crt", material.cert_pem, 0o644),
                                 ("server.key", material.key_pem, 0o600),
                                 ("pg_hba.conf", HBA, 0o600)):
            path = server.datadir / name
            path.write_text(text)
            give_to_postgres(path, mode)

    server = start_pg(TLS_OPTIONS, prepare)
    conn = psycopg2.connect(server.socket_dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        for ctx in REMOTE:
            user, password = LOGINS[ctx.name]
            cur.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
            cur.execute(f'CREATE DATABASE "{ctx.database}" OWNER "{user}"')
    conn.close()
    return server


def start_standby(primary: PgServer) -> PgServer:
    """A hot standby streaming from `primary` (pg_basebackup -R), on its own port."""
    standby = PgServer(root=new_root("eucadb-pg-standby-"), port=free_port(), options=dict(primary.options))
    subprocess.run([PG_BIN / "pg_basebackup", "-D", standby.datadir, "-R", "-X", "stream", "-c", "fast",
                    "--no-sync", "-h", str(primary.root), "-p", str(primary.port), "-U", "postgres"],
                   check=True, capture_output=True, **run_as())
    return launch(standby)


def target(server: PgServer, material: Pki, port: int | None = None, dns_name: str = DNS_NAME) -> RemoteTarget:
    """The RemoteTarget eucadb would build for `server` (dialled by IP, verified by DNS name)."""
    endpoint = Endpoint(address=server.host, port=port or server.port, dns_name=dns_name,
                        ca_file=material.ca_file)
    return RemoteTarget(endpoint, PoolSettings(size=2, max_overflow=0, timeout=5), "test")
