"""Typed property registry (docs/architecture.md §4): declarations, validation, history."""
from eucadb.properties.registry import BY_NAME, PROPERTIES, OnChange, Property
from eucadb.properties.service import PropertyService, lookup

__all__ = ["BY_NAME", "PROPERTIES", "OnChange", "Property", "PropertyService", "lookup"]
