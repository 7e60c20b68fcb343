"""`eucadb serve`: the reconcile loop plus its HTTP face (/healthz, /readyz, /status, /metrics)."""
