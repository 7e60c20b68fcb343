"""Alembic scripts of the remote append-only schema of reporting (run as the admin role by pool/)."""
