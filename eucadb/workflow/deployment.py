"""A deployment's identity and the names of its cloud resources (its secrets: workflow/vault.py).

Every resource eucadb creates is named `eucadb-<deployment>-<role>` and tagged
`eucadb:deployment=<deployment>`, which is how an interrupted workflow adopts what it already made and
how teardown finds everything even when the local store lost track.
"""
from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass

from sqlalchemy import select

from eucadb.store import Store
from eucadb.store.models import Deployment

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
    def backup_bucket(self) -> str:
        """The deployment's own bucket for WAL and base backups (S3 names are global: lower case)."""
        return f"{self.prefix}-backups"

    @property
    def backup_prefix(self) -> str:
        """The key prefix the instance role may touch; Barman puts `<prefix>/db/{wals,base}` under it."""
        return f"eucadb/{self.deployment}"

    @property
    def dns_name(self) -> str:
        return f"db.{self.deployment}.eucadb.internal"

    def tags(self, name: str | None = None) -> list[dict[str, str]]:
        tags = [{"Key": TAG, "Value": self.deployment}]
        if name:
            tags.append({"Key": "Name", "Value": name})
        return tags
