"""The reporting service: local updatable tables + remote append-only tables (DESIGN §9/§10)."""
