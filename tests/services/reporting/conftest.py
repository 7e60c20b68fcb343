"""Fixtures of the Reporting tests: a real remote schema (Alembic, as the admin) reached by the
`reporting_writer` role with INSERT/SELECT only, a real local store, and a hand-computed scenario."""
from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import eucadb.services.reporting.migrations as remote_migrations
from eucadb.bootstrap.services import ServiceState
from eucadb.errors import ServiceUnavailable
from eucadb.services.keys import AccessKeys, IssuedKey
from eucadb.services.reporting.api import ReportingApi
from eucadb.services.reporting.service import ReportingService
from eucadb.store import open_store
from eucadb.store.secretbox import SecretBox

sys.path.insert(0, str(Path(__file__).parent))   # reporting_scenario, signing
from signing import REGION  # noqa: E402
WRITER = "reporting_writer"


@dataclass
class Pools:
    """The two engines pool/ would hand out, as real engines; `remote=None` means "not ready"."""

    local: Engine
    remote: Engine | None

    def engine(self, context: str) -> Engine:
        if context == "reporting":
            return self.local
        if self.remote is None:
            raise ServiceUnavailable("reporting is unavailable: its remote database is not ready")
        return self.remote

    @contextlib.contextmanager
    def session(self, context: str) -> Iterator[Session]:
        with Session(self.engine(context), future=True) as session:
            yield session
            session.commit()


@dataclass
class State:
    value: ServiceState = ServiceState.ENABLED

    def __call__(self) -> ServiceState:
        return self.value


@dataclass
class RemoteDb:
    admin_dsn: str
    writer_url: str
    writer_dsn: str


def create_remote_db(pg_server, options: str = "") -> RemoteDb:
    """A migrated reporting database (CREATE DATABASE … `options`) and the writer role's access to it."""
    name = "eucalyptus_reporting_backend_" + uuid.uuid4().hex[:8]
    conn = psycopg2.connect(pg_server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} {options}")
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (WRITER,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE ROLE {WRITER} LOGIN PASSWORD 'writer'")
    conn.close()
    admin_engine = create_engine(pg_server.url(name))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(remote_migrations.__file__).parent))
    with admin_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        for stmt in (f"GRANT CONNECT ON DATABASE {name} TO {WRITER}",      # as scripts/setup_db.py does
                     f"GRANT USAGE ON SCHEMA public TO {WRITER}",
                     f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {WRITER}"):
            conn.exec_driver_sql(stmt)
    admin_engine.dispose()
    writer_url = f"postgresql+psycopg2://{WRITER}:writer@{pg_server.host}:{pg_server.port}/{name}"
    return RemoteDb(pg_server.dsn(name), writer_url,
                    f"host={pg_server.host} port={pg_server.port} user={WRITER} dbname={name}")


@pytest.fixture(scope="session")
def remote_db(pg_server) -> RemoteDb:
    return create_remote_db(pg_server)


@pytest.fixture
def clean_remote(remote_db) -> RemoteDb:
    conn = psycopg2.connect(remote_db.admin_dsn)
    conn.autocommit = True
    conn.cursor().execute("TRUNCATE usage_events")
    conn.close()
    return remote_db


@pytest.fixture
def local_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.dispose()


@pytest.fixture
def keys(local_store, tmp_path) -> AccessKeys:
    """Access keys in the same store and secret.key as a CLI run with EUCADB_HOME=tmp_path."""
    return AccessKeys(local_store, SecretBox(tmp_path / "secret.key"))


@pytest.fixture
def admin_key(keys) -> IssuedKey:
    return keys.create("tests", admin=True)


@pytest.fixture
def make_api(keys):
    """ReportingApi(service, …) verifying signatures against `keys` in the default region."""
    def make(service: ReportingService, **kwargs) -> ReportingApi:
        return ReportingApi(service, keys, REGION, **kwargs)
    return make


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def service(clean_remote, local_store, state) -> Iterator[ReportingService]:
    remote = create_engine(clean_remote.writer_url, pool_size=4)
    yield ReportingService(Pools(local_store.engine, remote), state)
    remote.dispose()


@pytest.fixture
def service_on_new_db(pg_server, local_store, state):
    """A factory: a ReportingService on a database of its own, made with these CREATE DATABASE options."""
    engines = []

    def make(options: str) -> ReportingService:
        engines.append(create_engine(create_remote_db(pg_server, options).writer_url))
        return ReportingService(Pools(local_store.engine, engines[-1]), state)
    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def serve_thread():
    """Start a real waitress server for a WSGI app in a thread; yields a starter returning the base URL."""
    from waitress import create_server, wasyncore
    servers = []

    def start(wsgi) -> str:
        server = create_server(wsgi, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.effective_port}"
    yield start
    for server, thread in servers:
        # closed from inside its own loop, so the loop never selects on a closed descriptor
        server.trigger.pull_trigger(lambda s=server: wasyncore.close_all(s._map))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
