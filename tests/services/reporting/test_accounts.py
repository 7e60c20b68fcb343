"""Reporting accounts and users in the local store (migration 0005) on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from eucadb.errors import UserError
from eucadb.services.reporting.accounts import account_names, add_account, add_user, list_accounts


def test_accounts_and_users_on_both_store_flavours(store):
    assert {"reporting_accounts", "reporting_users"} <= set(inspect(store.engine).get_table_names())
    with store.session() as s:
        add_account(s, "111", "Acme")
        add_account(s, "222", "Globex")
        add_user(s, "111", "bob")
        add_user(s, "111", "alice")
    with store.session() as s:
        assert [(a["id"], a["users"]) for a in list_accounts(s)] == [("111", "alice,bob"), ("222", "")]
        assert account_names(s) == {"111": "Acme", "222": "Globex"}


@pytest.mark.parametrize("call, message", [
    (lambda s: add_account(s, "111", "Other"), "account 111 already exists"),
    (lambda s: add_account(s, "333", "Acme"), "an account named 'Acme' already exists"),
    (lambda s: add_account(s, "", "Nameless"), "account id '' must be"),
    (lambda s: add_account(s, "444", "x" * 201), "account name"),
    (lambda s: add_user(s, "999", "bob"), "no account 999"),
    (lambda s: add_user(s, "111", "bob"), "user bob already exists"),
])
def test_bad_input_is_a_user_error(store, call, message):
    with store.session() as s:
        add_account(s, "111", "Acme")
        add_user(s, "111", "bob")
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        with store.session() as s:
            call(s)
