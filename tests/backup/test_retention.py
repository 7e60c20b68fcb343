"""Retention and schedules end to end (embedded cloud, real PostgreSQL, real Barman Cloud).

With REDUNDANCY 2 (retention_count=2), four base backups — three by hand, one by the leader's cron
schedule — leave the two newest and only the WAL they need; deleting below the minimum is refused
unless --force; status shows the restorable window; and a point-in-time restore inside the window
still gives back exactly what was committed by then.
"""
from __future__ import annotations

import json

import pytest

from e2e import module_cloud, sibling
from pg import free_port
from serving import Server, enabled
from restoring import address, insert, now_on, series
from eucadb.workflow.deployment import Names, current_deployment

pytestmark = pytest.mark.slow
W = "services.database.worker."
cloud = module_cloud("retention")


@pytest.fixture(scope="module")
def deployment(cloud, tmp_path_factory):
    env = sibling(cloud, tmp_path_factory.mktemp("deployment"),
                  **{W + "configured": "true", W + "backup.archive_timeout": "10",
                     W + "backup.retention_count": "2"})
    server = Server(env, free_port())
    try:
        server.wait(enabled, 300)
        yield env, server
    finally:
        server.stop()
        env.run("workflow", "teardown", "--delete-volume", check=False)


def catalogue(env) -> list[dict]:
    return json.loads(env.run("backup", "list", "-o", "json").stdout)


def create(env, name: str) -> dict:
    return json.loads(env.run("backup", "create", "--name", name, "-o", "json").stdout)


def wal_names(env) -> list[str]:
    deployment = current_deployment(env.app().store)
    names = Names(deployment)
    s3, keys = env.client("s3"), []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=names.backup_bucket, Prefix=f"{names.backup_prefix}/db/wals/"):
        keys += [o["Key"].rsplit("/", 1)[-1][:24] for o in page.get("Contents", [])]
    return sorted(k for k in keys if len(k) == 24 and k[:8].isdigit())


def test_redundancy_two_keeps_two_backups_and_their_wal_and_pitr_still_works(deployment):
    env, server = deployment
    db = address(server)
    insert(env, db, range(1, 4))                                                     # A
    first = create(env, "keep-1")
    assert first["retention_deleted"] == []
    create(env, "keep-2")
    insert(env, db, range(11, 14))                                                   # B
    third = create(env, "keep-3")
    assert third["retention_deleted"] == [first["backup_id"]]
    # the fourth is the leader's: a cron schedule, taken once at the next minute
    env.run("property", "set", W + "backup.schedule=* * * * *")
    doc = server.wait(lambda d: ((d.get("backups") or {}).get("scheduled") or {}).get("last_finished_at"), 180)
    env.run("property", "set", W + "backup.schedule=")
    scheduled = doc["backups"]["scheduled"]
    assert scheduled["last_error"] is None and scheduled["last_backup_id"]
    left = catalogue(env)
    assert [b["backup_id"] for b in left] == [third["backup_id"], scheduled["last_backup_id"]]
    # WAL older than the oldest remaining backup is gone; what it needs is there
    wals = wal_names(env)
    assert wals and wals[0] >= third["begin_wal"][:24] > first["begin_wal"][:24]
    # the window starts at the oldest remaining backup's end and reaches the archive's head
    window = server.wait(lambda d: d["backups"]["earliest_restorable_time"] == third["end_time_iso"], 420)["backups"]
    assert window["base_backups"] == 2 and window["latest_restorable_time"]
    status = env.run("status", EUCADB_SERVE_PORT=str(server.port)).stdout
    assert f"restorable: {third['end_time_iso']} -> " in status

    refused = env.run("backup", "delete", third["backup_id"], check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "below retention_count 2" in refused.stderr and "--force" in refused.stderr
    shown = json.loads(env.run("backup", "show", third["backup_id"], "-o", "json").stdout)
    assert shown["kept_by_retention"] and not shown["in_use_by_restore"]
    assert len(catalogue(env)) == 2                                                  # nothing deleted

    insert(env, db, range(21, 24))                                                   # C
    target = now_on(env, db)
    insert(env, db, range(31, 34))                                                   # D, after T
    result = json.loads(env.run("backup", "restore", "--time", target, "-o", "json", timeout=1800).stdout)
    assert result["state"] == "succeeded" and result["backup_id"] == scheduled["last_backup_id"]
    assert series(env, address(server)) == [*range(1, 4), *range(11, 14), *range(21, 24)]

    forced = json.loads(env.run("backup", "delete", third["backup_id"], "--force", "-o", "json").stdout)
    assert forced == {"deleted": third["backup_id"], "remaining": 1}
    assert [b["backup_id"] for b in catalogue(env)] == [scheduled["last_backup_id"]]
