"""Fixtures of the pool tests: one PKI per session, TLS servers and a hot standby per module (tlspg)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from pg import PgServer  # noqa: E402
from tlspg import Pki, make_pki, start_standby, start_tls_pg  # noqa: E402


@pytest.fixture(scope="session")
def server_pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def primary(server_pki) -> Iterator[PgServer]:
    server = start_tls_pg(server_pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second(server_pki) -> Iterator[PgServer]:
    """Another database instance (what a replacement instance is to the pools)."""
    server = start_tls_pg(server_pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def standby(primary) -> Iterator[PgServer]:
    server = start_standby(primary)
    yield server
    server.stop()
