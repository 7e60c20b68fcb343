"""Persistence contexts → SQLAlchemy engines built at run time (DESIGN §7)."""
