"""Fixtures of the CloudWatch service tests: one real endpoint per test module (see cwharness)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cwharness import Endpoint, start_endpoint  # noqa: E402


@pytest.fixture(scope="module")
def endpoint(pg_server, tmp_path_factory) -> Iterator[Endpoint]:
    endpoint, stop = start_endpoint(pg_server, tmp_path_factory.mktemp("cwhome"))
    yield endpoint
    stop()
