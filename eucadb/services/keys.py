"""API access keys eucadb issues for SigV4 (every API): each belongs to a 12-digit account; an admin
key may act for every account. The secret is shown once and stored sealed."""
from __future__ import annotations

import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from eucadb.errors import UserError
from eucadb.store import Store
from eucadb.store.models import AccessKey, Setting
from eucadb.store.secretbox import SecretBox

ID_ALPHABET = string.ascii_uppercase + string.digits
ACCOUNT_RE = re.compile(r"[0-9]{12}")
CACHE_SECONDS = 10.0   # a deleted key stops working within this long
DEFAULT_ACCOUNT = "default_account"        # installation_settings names
REPORT_KEY = "report_cli_access_key_id"


def purpose(access_key_id: str) -> str:
    return f"api-access-key:{access_key_id}"


def check_account(value: str) -> str:
    if not ACCOUNT_RE.fullmatch(value or ""):
        raise UserError(f"account {value!r} is not valid: an account id is 12 digits, e.g. 123456789012")
    return value


@dataclass(frozen=True)
class IssuedKey:
    access_key_id: str
    secret_access_key: str
    account: str = ""
    admin: bool = False


@dataclass(frozen=True)
class KeyRecord:
    """What a request signed with a key may do: its secret (for the signature), account and rank."""

    secret: str
    account: str
    admin: bool

    def may_act_for(self, account: str) -> bool:
        return self.admin or account == self.account


def setting(store: Store, name: str, make) -> str:
    """The installation setting `name`, made by `make()` the first time (one winner across servers)."""
    with store.session() as s:
        row = s.get(Setting, name)
        if row is not None:
            return row.value
    try:
        with store.session() as s:
            s.add(Setting(name=name, value=make()))
    except IntegrityError:   # another process made it first: theirs counts
        pass
    with store.session() as s:
        return s.get(Setting, name).value


class AccessKeys:
    def __init__(self, store: Store, box: SecretBox):
        self.store, self.box = store, box
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    def default_account(self) -> str:
        return setting(self.store, DEFAULT_ACCOUNT, lambda: "".join(secrets.choice(string.digits) for _ in range(12)))

    def create(self, description: str = "", account: str | None = None, admin: bool = False) -> IssuedKey:
        account = check_account(account) if account is not None else self.default_account()
        key_id = "AKEU" + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        with self.store.session() as s:
            s.add(AccessKey(access_key_id=key_id, secret=self.box.seal(secret, purpose(key_id)),
                            description=description, account=account, admin=admin))
        return IssuedKey(key_id, secret, account, admin)

    def own_admin_key(self, name: str, description: str) -> IssuedKey:
        """An admin key that eucadb itself signs with (e.g. `eucadb report usage`): made once, kept sealed
        like any other key, its secret never printed. Made again if an admin deleted it."""
        key_id = setting(self.store, name, lambda: self.create(description, admin=True).access_key_id)
        record = self.lookup(key_id, cached=False)
        if record is None:
            issued = self.create(description, admin=True)
            with self.store.session() as s:
                s.get(Setting, name).value = issued.access_key_id
            return issued
        return IssuedKey(key_id, record.secret, record.account, record.admin)

    def list(self) -> list[dict]:
        with self.store.session() as s:
            rows = s.scalars(select(AccessKey).order_by(AccessKey.created_at)).all()
            return [{"access_key_id": r.access_key_id, "account": r.account, "admin": bool(r.admin),
                     "description": r.description, "created_at": _iso(r.created_at)} for r in rows]

    def delete(self, access_key_id: str) -> None:
        with self.store.session() as s:
            row = s.get(AccessKey, access_key_id)
            if row is None:
                raise UserError(f"no access key {access_key_id!r} (see `eucadb credentials list`)")
            s.delete(row)
        with self._lock:
            self._cache.pop(access_key_id, None)

    def lookup(self, access_key_id: str, cached: bool = True) -> KeyRecord | None:
        """A key's secret, account and rank, or None when no such key exists (cached briefly: one
        lookup per burst)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key_id)
        if cached and hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with self.store.session() as s:
            row = s.get(AccessKey, access_key_id[:32])
            value = (KeyRecord(self.box.open(row.secret, purpose(row.access_key_id)), row.account, bool(row.admin))
                     if row else None)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, value)
        return value

    def secret(self, access_key_id: str) -> str | None:
        """The secret of a key, or None when no such key exists (what the SigV4 verifier asks)."""
        record = self.lookup(access_key_id)
        return record.secret if record else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
