"""How eucadb reaches the remote database: by IP, verifying the certificate's stable DNS name.

libpq's `hostaddr` is the address dialled and `host` the name checked by sslmode=verify-full, so the
instance may move to any IP while the certificate stays valid. Every remote connection — the
readiness probe, the pools — is built from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg2

from eucadb.errors import DatabaseError

KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 3, 3   # an idle dead peer is noticed in ~19 s
TCP_USER_TIMEOUT_MS = 10_000    # unacknowledged data for 10 s: the peer (or the path to it) is gone


@dataclass(frozen=True)
class Endpoint:
    address: str          # the instance's private IP
    port: int
    dns_name: str         # SAN of the server certificate
    ca_file: Path         # eucadb's CA certificate (public)

    def connect_args(self, user: str, password: str, dbname: str, connect_timeout: int = 5) -> dict:
        """libpq bounds the login (connect_timeout, TLS and authentication included) and notices a
        vanished peer: keepalives for an idle socket, tcp_user_timeout for data left unacknowledged.
        Neither notices a server that is frozen but whose kernel still answers; see watchdog.py."""
        return {"host": self.dns_name, "hostaddr": self.address, "port": self.port, "user": user,
                "password": password, "dbname": dbname, "sslmode": "verify-full",
                "sslrootcert": str(self.ca_file), "connect_timeout": connect_timeout,
                "keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE, "keepalives_interval": KEEPALIVE_INTERVAL,
                "keepalives_count": KEEPALIVE_COUNT, "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
                "application_name": "eucadb"}


def write_ca_file(home: Path, deployment: str, ca_pem: str) -> Path:
    path = home / "deployments" / deployment / "ca.crt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != ca_pem:
        path.write_text(ca_pem)
    return path


def probe(endpoint: Endpoint, user: str, password: str, dbname: str = "postgres") -> int:
    """Connect with TLS verify-full and return server_version_num; raises DatabaseError."""
    try:
        conn = psycopg2.connect(**endpoint.connect_args(user, password, dbname))
    except psycopg2.Error as exc:
        raise DatabaseError(f"{endpoint.address}:{endpoint.port}: {str(exc).strip()}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            return int(cur.fetchone()[0])
    finally:
        conn.close()
