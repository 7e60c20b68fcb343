"""Tables of the local store. Each later feature adds its tables here and a migration in versions/."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class PropertyValue(Base):
    """The current value of one property that differs from its default (absent row = default)."""

    __tablename__ = "properties"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON; secret properties hold SecretBox ciphertext
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))


class PropertyChange(Base):
    """Every change ever made to a property: who, when, old → new (secrets masked)."""

    __tablename__ = "property_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(100))


class Deployment(Base):
    """One eucadb deployment: the identity every cloud resource is named and tagged after."""

    __tablename__ = "deployments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeploymentSecret(Base):
    """Key material and credentials of a deployment, sealed with the local SecretBox."""

    __tablename__ = "deployment_secrets"
    deployment: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkflowRun(Base):
    """One run of a workflow (launch or teardown); resumed while its state is 'running'."""

    __tablename__ = "workflow_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    deployment: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class WorkflowStep(Base):
    """Progress of one step of a run, persisted after every transition."""

    __tablename__ = "workflow_steps"
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    resources: Mapped[str] = mapped_column(Text, default="{}")  # JSON ids of what the step owns
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    """The leader lease: one row per lease name; `token` grows by one at every change of holder."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float)  # epoch seconds: no timezone ambiguity in SQLite


class ServiceRecord(Base):
    """The published state of a dependent service, and an admin's hand on it."""

    __tablename__ = "service_states"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    admin_disabled_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    admin_disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PublishedEndpoint(Base):
    """The database endpoint the leader's pools point at, for every other server to follow.

    Only the leader writes it (fenced by its lease token, in the same transaction); followers build
    their own pools from it so that every `eucadb serve` can answer the APIs."""

    __tablename__ = "published_endpoints"
    deployment: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    token: Mapped[int] = mapped_column(Integer)   # the lease token of the leader that published it


class AccessKey(Base):
    """An API access key for SigV4 (every eucadb API), owned by one account; the secret is sealed with
    the local SecretBox. An admin key may act for every account (cloud components report for many)."""

    __tablename__ = "api_access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    account: Mapped[str] = mapped_column(String(12))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)


class Setting(Base):
    """A value made once per installation and shared by every server on this store (e.g. the default
    account id of new access keys, the key `eucadb report usage` signs with)."""

    __tablename__ = "installation_settings"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class BackupSchedule(Base):
    """The scheduled backups' bookkeeping: the last fire time taken (so a missed run is taken once,
    never twice, whichever leader starts) and how the last one went."""

    __tablename__ = "backup_schedule"
    deployment: Mapped[str] = mapped_column(String(32), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(255))
    last_fire_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))   # the fire time taken
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    backup_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReplicationSet(Base):
    """Which member of the deployment's replication set is the primary (no row: member 0,
    generation 1). A failover or switchover moves it and bumps the generation, fenced by the
    leader's lease, so the roles never follow from resource names."""

    __tablename__ = "replication_sets"
    deployment: Mapped[str] = mapped_column(String(32), primary_key=True)
    primary_member: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
