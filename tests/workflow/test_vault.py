"""The deployment vault's accessors: reads never write; rotation keeps the roles not asked for."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from eucadb.app import App
from eucadb.config import load
from eucadb.errors import EucadbError
from eucadb.store.models import DeploymentSecret


@pytest.fixture
def app(tmp_path):
    app = App(load(env={"EUCADB_HOME": str(tmp_path)}))
    yield app
    app.close()


def stored(app) -> int:
    with app.store.session() as s:
        return s.scalar(select(func.count()).select_from(DeploymentSecret))


def test_reads_before_the_first_launch_write_nothing(app):
    vault = app.vault("d1")
    assert vault.ca() is None and vault.server_pair() is None and vault.credentials_digest() == ""
    with pytest.raises(EucadbError, match="d1 has no database logins yet"):
        vault.db_logins()
    with pytest.raises(EucadbError, match="d1 has no CA certificate yet"):
        vault.db_endpoint("127.80.1.10")
    assert not vault.rotate_passwords(("admin",))
    assert stored(app) == 0


def test_rotation_renews_only_the_roles_asked_for_and_changes_the_digest(app):
    vault = app.vault("d1")
    logins = vault.ensure_db_logins()
    digest = vault.credentials_digest()
    assert vault.ensure_db_logins() == logins and digest   # created once
    assert vault.rotate_passwords(("cloudwatch",))
    rotated = vault.db_logins()
    assert rotated["cloudwatch"]["password"] != logins["cloudwatch"]["password"]
    assert rotated["cloudwatch"]["user"] == logins["cloudwatch"]["user"]
    assert {k: v for k, v in rotated.items() if k != "cloudwatch"} == \
        {k: v for k, v in logins.items() if k != "cloudwatch"}
    assert vault.credentials_digest() not in ("", digest)
