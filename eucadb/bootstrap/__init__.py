"""Preconditions, the reconcile loop, service states and the leader lease (DESIGN §8)."""
