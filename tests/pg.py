"""A throw-away real PostgreSQL server for tests (initdb in a temp dir; as `postgres` when root)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_as() -> dict:
    """subprocess kwargs that drop root to `postgres` (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


@dataclass
class PgServer:
    root: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{db}"

    def dsn(self, db: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={db}"

    def stop(self) -> None:
        subprocess.run([PG_BIN / "pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"],
                       capture_output=True, **run_as())
        shutil.rmtree(self.root, ignore_errors=True)


def start_pg() -> PgServer:
    root = Path(tempfile.mkdtemp(prefix="eucadb-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PgServer(root=root, port=free_port())
    subprocess.run([PG_BIN / "initdb", "-D", server.datadir, "-U", "postgres", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True, **run_as())
    subprocess.run([PG_BIN / "pg_ctl", "-D", server.datadir, "-w", "-l", root / "log", "-o",
                    f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={root}"
                    " -c fsync=off", "start"], check=True, capture_output=True, **run_as())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("test PostgreSQL did not start")
