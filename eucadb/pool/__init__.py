"""Persistence contexts → SQLAlchemy engines built at run time (docs/architecture.md §7)."""
