"""Shared fixtures: a temporary $EUCADB_HOME, a real PostgreSQL server, the store in both flavours."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from pg import start_pg  # noqa: E402

from eucadb.config import load  # noqa: E402
from eucadb.store import open_store  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh $EUCADB_HOME; EUCADB_* variables from the caller's shell are cleared."""
    for name in list(os.environ):
        if name.startswith("EUCADB_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("EUCADB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg_server():
    server = start_pg()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pgstore)])
def store_url(request, tmp_path) -> str:
    """The local store URL in both supported flavours; PostgreSQL gets a fresh database each test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("pg_server")
    name = "store_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    return server.url(name)


@pytest.fixture
def store(store_url):
    store = open_store(store_url)
    yield store
    store.dispose()


@pytest.fixture
def config(home):
    return load()
