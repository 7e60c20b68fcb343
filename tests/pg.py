"""A throw-away real PostgreSQL server for tests (initdb in a temp dir; as `postgres` when root)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

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


def give_to_postgres(path: Path, mode: int) -> None:
    """Chmod `path` and, when root, hand it to `postgres` (the server's own files must be its own)."""
    os.chmod(path, mode)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def new_root(prefix: str = "eucadb-pg-") -> Path:
    """A temporary directory the server's user may write in."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    give_to_postgres(root, 0o755)
    return root


@dataclass
class PgServer:
    root: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    options: dict[str, str] = field(default_factory=dict)   # extra `-c name=value` settings

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{db}"

    def dsn(self, db: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={db}"

    def socket_dsn(self, db: str = "postgres") -> str:
        """Over the Unix socket in `root`: for servers whose TCP side takes only TLS logins."""
        return f"host={self.root} port={self.port} user={self.user} dbname={db}"

    def halt(self) -> None:
        """Stop the server and keep its data directory (`launch` starts it again)."""
        subprocess.run([PG_BIN / "pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"],
                       capture_output=True, **run_as())

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


def launch(server: PgServer) -> PgServer:
    """Start the server on its data directory and wait until it accepts TCP connections."""
    settings = {"listen_addresses": "127.0.0.1", "port": str(server.port),
                "unix_socket_directories": str(server.root), "fsync": "off", **server.options}
    subprocess.run([PG_BIN / "pg_ctl", "-D", server.datadir, "-w", "-l", server.root / "log", "-o",
                    " ".join(f"-c {k}={v}" for k, v in settings.items()), "start"],
                   check=True, capture_output=True, **run_as())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("test PostgreSQL did not start")


def start_pg(options: Mapping[str, str] | None = None,
             prepare: Callable[[PgServer], None] | None = None) -> PgServer:
    """initdb (trust) and start; `prepare` may change the data directory between the two."""
    server = PgServer(root=new_root(), port=free_port(), options=dict(options or {}))
    subprocess.run([PG_BIN / "initdb", "-D", server.datadir, "-U", "postgres", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True, **run_as())
    if prepare is not None:
        prepare(server)
    return launch(server)
