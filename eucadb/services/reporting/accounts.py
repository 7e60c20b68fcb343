"""Reporting accounts and users, kept in the local store (context `reporting`, docs/architecture.md §10).

Events name accounts by id; these tables give them names for reports. An event for an account that is
not registered here is still recorded and reported (by id): ingestion must never depend on this table.
The models live on the store's declarative Base; their schema is migration 0005 of the local store.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from eucadb.errors import UserError
from eucadb.store.models import Base, utcnow

MAX_NAME = 200


class ReportingAccount(Base):
    """An account usage is reported for: the id events carry and a human name."""

    __tablename__ = "reporting_accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReportingUser(Base):
    """A user of an account (for per-user reports later; listed with the account today)."""

    __tablename__ = "reporting_users"
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("reporting_accounts.id", ondelete="CASCADE"),
                                            primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _check(label: str, value: str, limit: int) -> str:
    if not value or not value.strip() or len(value) > limit or any(ord(c) < 32 for c in value):
        raise UserError(f"{label} {value!r} must be 1..{limit} printable characters")
    return value


def add_account(session: Session, account_id: str, name: str) -> None:
    _check("account id", account_id, 64)
    _check("account name", name, MAX_NAME)
    if session.get(ReportingAccount, account_id) is not None:
        raise UserError(f"account {account_id} already exists")
    if session.scalar(select(ReportingAccount).where(ReportingAccount.name == name)) is not None:
        raise UserError(f"an account named {name!r} already exists")
    session.add(ReportingAccount(id=account_id, name=name))


def add_user(session: Session, account_id: str, user: str) -> None:
    _check("user name", user, MAX_NAME)
    if session.get(ReportingAccount, account_id) is None:
        raise UserError(f"no account {account_id}; add it first with `eucadb report accounts add`")
    if session.get(ReportingUser, (account_id, user)) is not None:
        raise UserError(f"user {user} already exists in account {account_id}")
    session.add(ReportingUser(account_id=account_id, name=user))
    try:
        session.flush()
    except IntegrityError as exc:
        raise UserError(f"cannot add user {user} to {account_id}: {exc.orig}") from None


def list_accounts(session: Session) -> list[dict[str, Any]]:
    users: dict[str, list[str]] = {}
    for u in session.scalars(select(ReportingUser).order_by(ReportingUser.name)):
        users.setdefault(u.account_id, []).append(u.name)
    return [{"id": a.id, "name": a.name, "users": ",".join(users.get(a.id, [])),
             "created_at": a.created_at.isoformat() if a.created_at else None}
            for a in session.scalars(select(ReportingAccount).order_by(ReportingAccount.id))]


def account_names(session: Session) -> dict[str, str]:
    return {a.id: a.name for a in session.scalars(select(ReportingAccount))}
