"""Local (updatable) tables of the CloudWatch service; created by store migrations 0004, 0007 and 0011,
and keyed by account since 0010 (every row belongs to one 12-digit account: docs/cloudwatch.md).

API access keys (also created by 0004) are shared by every API: eucadb/store/models.py AccessKey."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eucadb.store.models import Base, utcnow


ACCOUNT_LEN = 12


class Series(Base):
    """One metric time series: account + namespace + name + canonical dimensions → a small integer id.

    Datapoints on the remote database carry only the id, so the big table stays narrow (and the
    account costs nothing per datapoint)."""

    __tablename__ = "cw_series"
    __table_args__ = (UniqueConstraint("account", "namespace", "metric_name", "dimensions", name="cw_series_key"),
                      Index("cw_series_account_id", "account", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    namespace: Mapped[str] = mapped_column(String(255))
    metric_name: Mapped[str] = mapped_column(String(255))
    dimensions: Mapped[str] = mapped_column(Text)   # canonical JSON: [[name, value], ...] sorted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alarm(Base):
    """A metric alarm: its definition as given (JSON) and its current state."""

    __tablename__ = "cw_alarms"
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str] = mapped_column(Text)
    state_reason_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Tables added by store migration 0007, with an account column from the start.


class Dashboard(Base):
    """A dashboard: its body exactly as put (AWS returns it byte for byte) and when it last changed."""

    __tablename__ = "cw_dashboards"
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)          # bytes of the body as UTF-8
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tag(Base):
    """One tag of one taggable resource (`alarm` or `dashboard`, by name)."""

    __tablename__ = "cw_tags"
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class HistoryOutbox(Base):
    """An alarm-history event committed with the alarm change it describes, not yet copied to the
    remote alarm_history (see history.py): the change and its history are one local transaction."""

    __tablename__ = "cw_history_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    alarm_name: Mapped[str] = mapped_column(String(255))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    item_type: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)


class ActionOutbox(Base):
    """One action of one alarm state transition, committed with the transition (store migration
    0011) and marked done by the leader once carried out (actions.py): never lost, never twice."""

    __tablename__ = "cw_action_outbox"
    __table_args__ = (UniqueConstraint("transition_id", "action", name="cw_action_outbox_once"),
                      Index("cw_action_outbox_pending", "done_at", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    alarm_name: Mapped[str] = mapped_column(String(255))
    transition_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text)        # JSON: what the call needs (see actions.Context)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)   # Succeeded / Failed
