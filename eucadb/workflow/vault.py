"""A deployment's vault: its CA, server pair, key passphrase and database logins, sealed at rest.

The one place that knows the names these secrets are stored under; everything else asks for them by
what they are. A vault made for a workflow step carries the runner's fence (the leader lease's
`check`), run inside each write's own transaction: a leader deposed in the middle of a step (a long
pause, a partition) cannot overwrite the certificates or credentials its successor has delivered.
Reads never write; the `ensure_*` accessors create what is missing and so are for steps only.
"""
from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from sqlalchemy import select

from eucadb.errors import EucadbError
from eucadb.pool.endpoint import Endpoint, write_ca_file
from eucadb.store import Fence, Store, unfenced
from eucadb.store.models import DeploymentSecret, utcnow
from eucadb.store.secretbox import SecretBox
from eucadb.workflow import credentials, pki
from eucadb.workflow.deployment import Names

# Row names in deployment_secrets: stored data, never renamed.
_CA_KEY, _CA_CERT, _SERVER_KEY, _SERVER_CERT = "ca_key", "ca_cert", "server_key", "server_cert"
_KEY_PASSPHRASE, _DB_LOGINS = "key_passphrase", "db_credentials"
DB_PORT = 5432


class SealedSecrets:
    """Named secrets of one deployment, sealed with the SecretBox; every write is fenced."""

    def __init__(self, store: Store, box: SecretBox, deployment: str, fence: Fence = unfenced):
        self.store, self.box, self.deployment, self.fence = store, box, deployment, fence

    def _purpose(self, name: str) -> str:
        return f"deployment:{self.deployment}:{name}"

    def get_many(self, names: Iterable[str]) -> dict[str, str | None]:
        """Read together (one transaction), so a renewal never shows half old, half new."""
        with self.store.session() as s:
            rows = {name: s.get(DeploymentSecret, (self.deployment, name)) for name in names}
            return {name: self.box.open(row.value, self._purpose(name)) if row else None
                    for name, row in rows.items()}

    def get(self, name: str) -> str | None:
        return self.get_many((name,))[name]

    def put_many(self, values: Mapping[str, str]) -> None:
        """All or none, in one transaction: a key and its certificate must never be torn apart by a
        crash between two writes."""
        sealed = {name: self.box.seal(value, self._purpose(name)) for name, value in values.items()}
        with self.store.session() as s:
            self.fence(s)
            for name, value in sealed.items():
                row = s.get(DeploymentSecret, (self.deployment, name))
                if row is None:
                    s.add(DeploymentSecret(deployment=self.deployment, name=name, value=value))
                else:
                    row.value, row.updated_at = value, utcnow()

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        value = self.get(name)
        if value is None:
            value = make()
            self.put_many({name: value})
        return value

    def update(self, name: str, change: Callable[[str], str]) -> bool:
        """Read, change and write back in one transaction (the row locked on PostgreSQL), so two
        concurrent changes never lose one another. False when there is no such secret."""
        purpose = self._purpose(name)
        with self.store.session() as s:
            self.fence(s)
            row = s.execute(select(DeploymentSecret).where(
                DeploymentSecret.deployment == self.deployment, DeploymentSecret.name == name)
                .with_for_update()).scalar_one_or_none()
            if row is None:
                return False
            row.value = self.box.seal(change(self.box.open(row.value, purpose)), purpose)
            row.updated_at = utcnow()
            return True


@dataclass(frozen=True)
class Pair:
    """A private key (PEM) and its certificate (PEM)."""
    key: str
    cert: str


@dataclass(frozen=True)
class KeyMaterial:
    """What the instance and its clients need: the CA certificate and the server pair it issued."""
    ca_cert: str
    server_cert: str
    server_key: str


def logins_digest(logins: Mapping | None) -> str:
    """Which logins a launch template carries, without carrying them ("" when there are none)."""
    if not logins:
        return ""
    return hashlib.sha256(json.dumps(logins, sort_keys=True).encode()).hexdigest()[:16]


class DeploymentVault:
    """A deployment's secrets by what they are; writes go through `fence` (see the module doc)."""

    def __init__(self, store: Store, box: SecretBox, deployment: str, home: Path,
                 fence: Fence = unfenced):
        self.deployment, self.home = deployment, home
        self._secrets = SealedSecrets(store, box, deployment, fence)

    # --- certificates ----------------------------------------------------------------------------
    def _pairs(self) -> tuple[Pair | None, Pair | None]:
        """The CA and the server pair, read together (never one of each generation)."""
        got = self._secrets.get_many((_CA_KEY, _CA_CERT, _SERVER_KEY, _SERVER_CERT))

        def pair(key: str, cert: str) -> Pair | None:
            return Pair(got[key], got[cert]) if got[key] and got[cert] else None
        return pair(_CA_KEY, _CA_CERT), pair(_SERVER_KEY, _SERVER_CERT)

    def ca(self) -> Pair | None:
        return self._pairs()[0]

    def server_pair(self) -> Pair | None:
        return self._pairs()[1]

    def ca_cert(self) -> str | None:
        return self._secrets.get(_CA_CERT)

    def server_cert(self) -> str | None:
        return self._secrets.get(_SERVER_CERT)

    def put_key_material(self, server: Pair, ca: Pair | None = None) -> None:
        """One write: a crash must never leave a certificate of the old CA beside the new CA, or a
        key beside another key's certificate (TLS verification would then fail for good)."""
        values = {_SERVER_KEY: server.key, _SERVER_CERT: server.cert}
        if ca is not None:
            values |= {_CA_KEY: ca.key, _CA_CERT: ca.cert}
        self._secrets.put_many(values)

    def ensure_key_material(self, days: int) -> KeyMaterial:
        """The CA and server pair, created (or renewed at 2/3 of their lifetime) as needed."""
        ca, server = self._pairs()
        fresh_ca = None
        if ca is None or pki.needs_renewal(ca.cert):
            ca = fresh_ca = Pair(*pki.create_ca(f"eucadb {self.deployment} CA", days=max(days * 3, 3650)))
        if fresh_ca or server is None or pki.needs_renewal(server.cert):
            server = Pair(*pki.issue_server_certificate(ca.key, ca.cert, Names(self.deployment).dns_name,
                                                        days=days))
            self.put_key_material(server, fresh_ca)
        return KeyMaterial(ca_cert=ca.cert, server_cert=server.cert, server_key=server.key)

    def ensure_key_passphrase(self) -> str:
        """What protects the instance's on-disk copy of the server key."""
        return self._secrets.get_or_create(_KEY_PASSPHRASE, lambda: pysecrets.token_urlsafe(32))

    # --- database logins -------------------------------------------------------------------------
    def db_logins(self) -> dict[str, dict[str, str]]:
        """{"admin"|"cloudwatch"|"reporting"|"replication": {"user", "password"}}; read only."""
        stored = self._secrets.get(_DB_LOGINS)
        if stored is None:
            raise EucadbError(f"deployment {self.deployment} has no database logins yet: its first "
                              "launch makes them")
        return json.loads(stored)

    def ensure_db_logins(self) -> dict[str, dict[str, str]]:
        return json.loads(self._secrets.get_or_create(_DB_LOGINS,
                                                      lambda: json.dumps(credentials.generate())))

    def credentials_digest(self) -> str:
        """The digest of the logins in the vault now ("" before the first launch); read only."""
        stored = self._secrets.get(_DB_LOGINS)
        return logins_digest(json.loads(stored)) if stored else ""

    def rotate_passwords(self, roles: tuple[str, ...]) -> bool:
        """New passwords for `roles`, the others kept; False when there are no logins yet."""
        return self._secrets.update(
            _DB_LOGINS, lambda stored: json.dumps(credentials.rotate(json.loads(stored), roles)))

    def db_endpoint(self, address: str, port: int = DB_PORT) -> Endpoint:
        """How eucadb reaches the database at `address`: TLS verify-full against this vault's CA."""
        ca_cert = self.ca_cert()
        if ca_cert is None:
            raise EucadbError(f"deployment {self.deployment} has no CA certificate yet: its first "
                              "launch makes it")
        return Endpoint(address, port, Names(self.deployment).dns_name,
                        write_ca_file(self.home, self.deployment, ca_cert))
