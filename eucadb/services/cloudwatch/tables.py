"""Local (updatable) tables of the CloudWatch service; created by store migration 0004.

API access keys (also created by 0004) are shared by every API: eucadb/store/models.py AccessKey."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eucadb.store.models import Base, utcnow


class Series(Base):
    """One metric time series: namespace + name + canonical dimensions → a small integer id.

    Datapoints on the remote database carry only the id, so the big table stays narrow."""

    __tablename__ = "cw_series"
    __table_args__ = (UniqueConstraint("namespace", "metric_name", "dimensions", name="cw_series_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(255))
    metric_name: Mapped[str] = mapped_column(String(255))
    dimensions: Mapped[str] = mapped_column(Text)   # canonical JSON: [[name, value], ...] sorted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alarm(Base):
    """A metric alarm: its definition as given (JSON) and its current state."""

    __tablename__ = "cw_alarms"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str] = mapped_column(Text)
    state_reason_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
