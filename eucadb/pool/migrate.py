"""Schema migrations of the remote append-only databases, run as the admin role after the pools are
built and before the services are enabled (docs/architecture.md §7)."""
from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import DatabaseError
from eucadb.pool.contexts import REMOTE, Context
from eucadb.pool.endpoint import Endpoint
from eucadb.resources import alembic_scripts


def admin_engine(endpoint: Endpoint, user: str, password: str, database: str) -> Engine:
    """An unpooled engine as the admin role: for migrations and maintenance, never for requests."""
    return create_engine("postgresql+psycopg2://", poolclass=NullPool,
                         connect_args=endpoint.connect_args(user, password, database))


def check_remote_scripts() -> None:
    """Refuse to serve from an installation missing a remote schema's revisions (InstallationError)
    now, at start, rather than as a pool swap failing on every loop cycle."""
    for ctx in REMOTE:
        with alembic_scripts(ctx.migrations):
            pass


def migrate_remote(ctx: Context, endpoint: Endpoint, admin_user: str, admin_password: str) -> None:
    with alembic_scripts(ctx.migrations) as cfg:
        engine = admin_engine(endpoint, admin_user, admin_password, ctx.database)
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"migrating {ctx.name}: {exc.__cause__ or exc}") from None
        finally:
            engine.dispose()
