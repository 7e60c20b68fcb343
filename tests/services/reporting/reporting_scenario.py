"""A usage scenario whose report was computed by hand (range: 2026-01-01, 24 h)."""
START, END = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def ev(ts: str, account: str, rtype: str, rid: str, event: str, **attributes) -> dict:
    return {"ts": ts, "account": account, "resource_type": rtype, "resource_id": rid, "event": event,
            "attributes": attributes}


SCENARIO = [
    ev("2025-12-31T12:00:00Z", "A", "instance", "i-1", "create", instance_type="m1.small"),  # 24 h
    ev("2026-01-01T06:00:00Z", "A", "instance", "i-2", "create", instance_type="m1.small"),  # 3.5 h
    ev("2026-01-01T09:30:00+00:00", "A", "instance", "i-2", "delete"),
    ev("2026-01-01T20:00:00Z", "A", "instance", "i-3", "create", instance_type="m1.large"),  # 4 h
    ev("2026-01-02T04:00:00Z", "A", "instance", "i-3", "delete"),
    ev("2026-01-01T10:00:00Z", "A", "instance", "i-4", "delete"),                            # 0: no create
    ev("2025-12-30T00:00:00Z", "A", "instance", "i-5", "create", instance_type="m1.small"),  # 0: gone before
    ev("2025-12-31T00:00:00Z", "A", "instance", "i-5", "delete"),
    ev("2026-01-01T23:00:00Z", "A", "instance", "i-6", "create", instance_type="m1.small"),  # 1 h
    ev("2026-01-02T01:00:00Z", "A", "instance", "i-6", "usage", instance_type="m1.large"),   # after end
    ev("2025-12-31T00:00:00Z", "A", "volume", "vol-1", "create", size_gib=10),      # 12 h × 10
    ev("2026-01-01T14:00:00+02:00", "A", "volume", "vol-1", "usage", size_gib=20),  # 6 h × 20 (12:00Z)
    ev("2026-01-01T18:00:00Z", "A", "volume", "vol-1", "delete"),
    ev("2026-01-01T22:00:00Z", "A", "snapshot", "snap-1", "create", size_gib=5),    # 2 h × 5
    ev("2026-01-02T00:00:00Z", "B", "instance", "i-7", "create", instance_type="m1.small"),  # at end: 0
    ev("2026-01-01T18:00:00Z", "B", "volume", "vol-2", "usage", size_gib=100),      # no create: 6 h × 100
    ev("2025-12-01T00:00:00Z", "B", "address", "eip-1", "create", ip="10.0.0.1"),   # 24 h
    ev("2026-01-01T12:00:00Z", "B", "bucket", "bkt-1", "create", bytes=2**31),     # 12 h × 2 GiB
    ev("2025-12-01T00:00:00Z", "B", "volume", "vol-3", "create", size_gib=1),       # old life, ended
    ev("2025-12-02T00:00:00Z", "B", "volume", "vol-3", "delete"),
    ev("2025-12-03T00:00:00Z", "B", "volume", "vol-3", "usage", size_gib=1),        # stale
    ev("2026-01-01T12:00:00Z", "B", "volume", "vol-3", "create", size_gib=4),       # 12 h × 4
]
EXPECTED = [  # (account, resource_type, item, unit, quantity), in report order
    ("A", "instance", "m1.large", "instance-hours", 4.0),
    ("A", "instance", "m1.small", "instance-hours", 24 + 3.5 + 1),
    ("A", "volume", "vol-1", "GiB-hours", 12 * 10 + 6 * 20),
    ("A", "snapshot", "snap-1", "GiB-hours", 2 * 5),
    ("B", "volume", "vol-2", "GiB-hours", 6 * 100),
    ("B", "volume", "vol-3", "GiB-hours", 12 * 4),
    ("B", "address", "eip-1", "address-hours", 24.0),
    ("B", "bucket", "bkt-1", "GiB-hours", 12 * 2),
]


def rows_of(doc: dict) -> list[tuple]:
    return [(r["account"], r["resource_type"], r["item"], r["unit"], r["quantity"]) for r in doc["rows"]]


