"""Persistence contexts (docs/architecture.md §7): which data lives where, and who may write it.

Each dependent service has a local context (its small updatable tables, in the local store) and a
remote one (its append-only tables, on the database instance, reached with its writer role).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Location(enum.Enum):
    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True)
class Context:
    name: str
    service: str
    location: Location
    database: str = ""          # remote database name
    writer: str = ""            # credentials key of the writer role (see workflow/credentials.py)
    migrations: str = ""        # package holding the remote schema's Alembic scripts


CONTEXTS: tuple[Context, ...] = (
    Context("cloudwatch", "cloudwatch", Location.LOCAL),
    Context("cloudwatch_backend", "cloudwatch", Location.REMOTE, "eucalyptus_cloudwatch_backend",
            "cloudwatch", "eucadb.services.cloudwatch.migrations"),
    Context("reporting", "reporting", Location.LOCAL),
    Context("reporting_backend", "reporting", Location.REMOTE, "eucalyptus_reporting_backend",
            "reporting", "eucadb.services.reporting.migrations"),
)
BY_NAME = {c.name: c for c in CONTEXTS}
REMOTE = tuple(c for c in CONTEXTS if c.location is Location.REMOTE)
SERVICES = ("cloudwatch", "reporting")
