"""Helpers of the replica and failover end-to-end tests: reading the members out of /status."""
from __future__ import annotations

import time

from serving import count_rows, enabled


def streaming(doc, replicas: int) -> bool:
    """The services are enabled and exactly `replicas` replicas stream from the primary."""
    members = doc.get("members") or []
    return enabled(doc) and len(members) == replicas + 1 and \
        sum(1 for m in members if m["role"] == "replica" and m["state"] == "streaming") == replicas


def primary_of(doc) -> dict | None:
    return next((m for m in doc.get("members") or [] if m["role"] == "primary" and not m["error"]), None)


def wait_count(env, address: str, expected: int, timeout: float = 60) -> int:
    end, found = time.monotonic() + timeout, -1
    while time.monotonic() < end:
        found = count_rows(env, address)
        if found == expected:
            return found
        time.sleep(0.2)
    return found
