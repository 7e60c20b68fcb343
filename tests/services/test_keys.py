"""Access keys belong to accounts: `credentials create [--account ID] [--admin]`, one default account
per installation, keys issued before accounts existed get it (store migration 0008)."""
from __future__ import annotations

import json

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from eucadb.cli import cli
from eucadb.config import load
from eucadb.resources import alembic_scripts
from eucadb.services.keys import REPORT_KEY, AccessKeys
from eucadb.store import open_store
from eucadb.store.secretbox import SecretBox


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_keys_carry_an_account_and_the_default_is_made_once(home):
    first = json.loads(invoke("credentials", "create", "-o", "json").output)
    second = json.loads(invoke("credentials", "create", "-o", "json").output)
    assert len(first["account"]) == 12 and first["account"].isdigit() and first["admin"] is False
    assert second["account"] == first["account"]                     # one default per installation
    admin = json.loads(invoke("credentials", "create", "--account", "123456789012", "--admin", "-o", "json").output)
    assert (admin["account"], admin["admin"]) == ("123456789012", True)
    listed = {k["access_key_id"]: k for k in json.loads(invoke("credentials", "list", "-o", "json").output)}
    assert (listed[admin["access_key_id"]]["account"], listed[admin["access_key_id"]]["admin"]) == ("123456789012", True)
    assert listed[first["access_key_id"]]["admin"] is False
    table = invoke("credentials", "list").output
    assert table.splitlines()[0].split()[:3] == ["ACCESS_KEY_ID", "ACCOUNT", "ADMIN"]


@pytest.mark.parametrize("bad", ["111", "12345678901a", "1234567890123", ""])
def test_a_bad_account_is_a_one_line_error_and_nothing_is_made(home, bad):
    result = invoke("credentials", "create", "--account", bad)
    assert result.exit_code != 0 and "an account id is 12 digits" in str(result.exception or result.output)
    assert json.loads(invoke("credentials", "list", "-o", "json").output) == []


def test_the_report_key_is_made_once_and_remade_if_deleted(home):
    config = load()
    store = open_store(config.store_url)
    try:
        keys = AccessKeys(store, SecretBox(config.home / "secret.key"))
        first = keys.own_admin_key(REPORT_KEY, "report")
        assert first.admin and keys.own_admin_key(REPORT_KEY, "report") == first
        keys.delete(first.access_key_id)
        again = keys.own_admin_key(REPORT_KEY, "report")
        assert again.access_key_id != first.access_key_id and again.admin
        assert keys.lookup(again.access_key_id).secret == again.secret_access_key
    finally:
        store.dispose()


def test_keys_issued_before_accounts_get_the_default_account(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(url)
    with alembic_scripts("eucadb.store", "migrations") as cfg:
        cfg.attributes["connection_engine"] = engine
        command.upgrade(cfg, "0006")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_access_keys (access_key_id, secret, description, created_at) "
                              "VALUES ('AKEUOLD', 'sealed', 'old', '2026-01-01 00:00:00')"))
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        account, admin = conn.execute(text("SELECT account, admin FROM api_access_keys")).one()
        default = conn.execute(text("SELECT value FROM installation_settings WHERE name = 'default_account'")).scalar()
    engine.dispose()
    assert account == default and len(default) == 12 and default.isdigit() and not admin
