"""The local store: SQLAlchemy models + Alembic migrations (docs/architecture.md §2).

Default: an SQLite file under $EUCADB_HOME; any SQLAlchemy PostgreSQL URL works the same way. The store
holds properties and their history, workflow runs, the leader lease and the services' updatable tables.
"""
from eucadb.store.database import Fence, Store, open_store, unfenced

__all__ = ["Fence", "Store", "open_store", "unfenced"]
