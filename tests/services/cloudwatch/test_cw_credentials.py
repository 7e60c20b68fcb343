"""`eucadb credentials create|list|delete`: the secret is shown once and stored only sealed."""
from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from eucadb.cli import cli
from eucadb.config import load
from eucadb.services.keys import AccessKeys
from eucadb.store.models import AccessKey
from eucadb.store import open_store
from eucadb.store.secretbox import SecretBox


def test_create_list_delete(home):
    runner = CliRunner()
    made = runner.invoke(cli, ["credentials", "create", "--description", "grafana", "-o", "json"])
    assert made.exit_code == 0, made.output
    issued = json.loads(made.output)
    listed = runner.invoke(cli, ["credentials", "list", "-o", "json"])
    assert [k["access_key_id"] for k in json.loads(listed.output)] == [issued["access_key_id"]]
    assert issued["secret_access_key"] not in listed.output
    config = load()
    store = open_store(config.store_url)
    try:
        with store.session() as s:
            sealed = s.scalars(select(AccessKey)).one().secret
        assert issued["secret_access_key"] not in sealed
        keys = AccessKeys(store, SecretBox(config.home / "secret.key"))
        assert keys.secret(issued["access_key_id"]) == issued["secret_access_key"]
    finally:
        store.dispose()
    assert runner.invoke(cli, ["credentials", "delete", issued["access_key_id"]]).exit_code == 0
    gone = runner.invoke(cli, ["credentials", "delete", issued["access_key_id"]])
    assert gone.exit_code != 0
