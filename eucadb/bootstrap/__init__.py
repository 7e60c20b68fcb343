"""Preconditions, the reconcile loop, service states and the leader lease (docs/architecture.md §8)."""
