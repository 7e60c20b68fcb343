"""A deployment's identity, the names of its cloud resources, and its sealed local secrets.

Every resource eucadb creates is named `eucadb-<deployment>-<role>` and tagged
`eucadb:deployment=<deployment>`, which is how an interrupted workflow adopts what it already made and
how teardown finds everything even when the local store lost track.
"""
from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass
from typing import Mapping

from sqlalchemy import select

from eucadb.store import Store
from eucadb.store.models import Deployment, DeploymentSecret, utcnow
from eucadb.store.secretbox import SecretBox

TAG = "eucadb:deployment"


def current_deployment(store: Store, create: bool = True) -> str | None:
    """The deployment id of this store (created on first use: one deployment per store)."""
    with store.session() as s:
        row = s.scalars(select(Deployment).order_by(Deployment.created_at)).first()
        if row is None and create:
            row = Deployment(id=pysecrets.token_hex(4))
            s.add(row)
        return row.id if row else None


@dataclass(frozen=True)
class Names:
    deployment: str

    @property
    def prefix(self) -> str:
        return f"eucadb-{self.deployment}"

    @property
    def db(self) -> str:
        """Security group, role, instance profile, launch template and ASG share this name."""
        return f"{self.prefix}-db"

    @property
    def server_certificate(self) -> str:
        return f"{self.prefix}-server"

    @property
    def secret(self) -> str:
        return f"eucadb/{self.deployment}/server-key"

    @property
    def volume(self) -> str:
        return f"{self.prefix}-data"

    @property
    def dns_name(self) -> str:
        return f"db.{self.deployment}.eucadb.internal"

    def tags(self, name: str | None = None) -> list[dict[str, str]]:
        tags = [{"Key": TAG, "Value": self.deployment}]
        if name:
            tags.append({"Key": "Name", "Value": name})
        return tags


class Vault:
    """Named secrets of one deployment (CA key, server key, DB credentials), sealed at rest."""

    def __init__(self, store: Store, box: SecretBox, deployment: str):
        self.store, self.box, self.deployment = store, box, deployment

    def _purpose(self, name: str) -> str:
        return f"deployment:{self.deployment}:{name}"

    def get(self, name: str) -> str | None:
        with self.store.session() as s:
            row = s.get(DeploymentSecret, (self.deployment, name))
            return self.box.open(row.value, self._purpose(name)) if row else None

    def put(self, name: str, value: str) -> None:
        self.put_many({name: value})

    def put_many(self, values: Mapping[str, str]) -> None:
        """All or none, in one transaction: a key and its certificate must never be torn apart by a
        crash between two writes."""
        sealed = {name: self.box.seal(value, self._purpose(name)) for name, value in values.items()}
        with self.store.session() as s:
            for name, value in sealed.items():
                row = s.get(DeploymentSecret, (self.deployment, name))
                if row is None:
                    s.add(DeploymentSecret(deployment=self.deployment, name=name, value=value))
                else:
                    row.value, row.updated_at = value, utcnow()

    def get_or_create(self, name: str, make) -> str:
        value = self.get(name)
        if value is None:
            value = make()
            self.put(name, value)
        return value
