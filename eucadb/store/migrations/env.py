"""Alembic environment: runs against the engine eucadb hands over (no alembic.ini needed)."""
from alembic import context

from eucadb.store.models import Base

engine = context.config.attributes["connection_engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
