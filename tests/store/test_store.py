"""The local store migrates cleanly on SQLite and PostgreSQL, is safe to migrate twice, and the schema
the migrations build is the one the models describe (tables, columns, types, nullability, keys,
indexes): a model changed without a migration, or the reverse, fails here on both flavours."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

import eucadb.services.cloudwatch.tables  # noqa: F401  (registers its tables on Base)
import eucadb.services.reporting.accounts  # noqa: F401
from eucadb.store import open_store
from eucadb.resources import alembic_scripts
from eucadb.store.models import Base


def head_revision() -> str:
    with alembic_scripts("eucadb.store", "migrations") as cfg:
        return ScriptDirectory.from_config(cfg).get_current_head()


def drift(store) -> list:
    """What autogenerate would write to turn the migrated schema into the models' (empty: none).

    Server defaults are not compared: the models give Python-side defaults, which the ORM applies;
    a table the models lack shows up as a table to drop, so every model module must be imported."""
    with store.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)


def test_migrated_schema_matches_the_models_and_migrating_twice_changes_nothing(store_url):
    store = open_store(store_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.execute(text("select version_num from alembic_version")).scalar_one() == head_revision()
        assert drift(store) == []
    finally:
        store.dispose()
