"""Alembic scripts of the remote append-only schema of cloudwatch (run as the admin role by pool/)."""
