"""Alembic environment for a remote append-only schema: runs on the connection pool/ hands over."""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table="eucadb_schema_version")
with context.begin_transaction():
    context.run_migrations()
