"""The cloudwatch service: local updatable tables + remote append-only tables (docs/architecture.md §9)."""
