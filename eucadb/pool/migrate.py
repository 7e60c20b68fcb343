"""Schema migrations of the remote append-only databases, run as the admin role after the pools are
built and before the services are enabled (DESIGN §7)."""
from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from eucadb.errors import DatabaseError
from eucadb.pool.contexts import Context
from eucadb.pool.endpoint import Endpoint


def migrate_remote(ctx: Context, endpoint: Endpoint, admin_user: str, admin_password: str) -> None:
    package = importlib.import_module(ctx.migrations)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(package.__file__).parent))
    engine = create_engine("postgresql+psycopg2://", poolclass=None,
                           connect_args=endpoint.connect_args(admin_user, admin_password, ctx.database))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"migrating {ctx.name}: {exc.__cause__ or exc}") from None
    finally:
        engine.dispose()
