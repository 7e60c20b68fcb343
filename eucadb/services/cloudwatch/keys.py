"""API access keys eucadb issues for SigV4: the secret is shown once and stored sealed."""
from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from eucadb.errors import UserError
from eucadb.services.cloudwatch.tables import AccessKey
from eucadb.store import Store
from eucadb.store.secretbox import SecretBox

ID_ALPHABET = string.ascii_uppercase + string.digits
CACHE_SECONDS = 10.0   # a deleted key stops working within this long


def purpose(access_key_id: str) -> str:
    return f"api-access-key:{access_key_id}"


@dataclass(frozen=True)
class IssuedKey:
    access_key_id: str
    secret_access_key: str


class AccessKeys:
    def __init__(self, store: Store, box: SecretBox):
        self.store, self.box = store, box
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def create(self, description: str = "") -> IssuedKey:
        key_id = "AKEU" + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        with self.store.session() as s:
            s.add(AccessKey(access_key_id=key_id, secret=self.box.seal(secret, purpose(key_id)),
                            description=description))
        return IssuedKey(key_id, secret)

    def list(self) -> list[dict]:
        with self.store.session() as s:
            rows = s.scalars(select(AccessKey).order_by(AccessKey.created_at)).all()
            return [{"access_key_id": r.access_key_id, "description": r.description,
                     "created_at": _iso(r.created_at)} for r in rows]

    def delete(self, access_key_id: str) -> None:
        with self.store.session() as s:
            row = s.get(AccessKey, access_key_id)
            if row is None:
                raise UserError(f"no access key {access_key_id!r} (see `eucadb credentials list`)")
            s.delete(row)
        with self._lock:
            self._cache.pop(access_key_id, None)

    def secret(self, access_key_id: str) -> str | None:
        """The secret of a key, or None when no such key exists (cached briefly: one lookup per burst)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key_id)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with self.store.session() as s:
            row = s.get(AccessKey, access_key_id[:32])
            value = self.box.open(row.secret, purpose(row.access_key_id)) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, value)
        return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
