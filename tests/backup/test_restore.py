"""`eucadb backup restore`, end to end: embedded cloud, real PostgreSQL, real Barman Cloud.

Rows A, a base backup, rows B, time T, rows C. `restore --time T` gives a deployment whose database
has A and B and not C, on a NEW volume, with the services ENABLED and the old volume kept (tagged
retired). `restore BACKUP_ID` then gives A only. Bad requests change nothing.
"""
from __future__ import annotations

import json
import time

import pytest

from e2e import module_cloud, sibling
from pg import free_port
from serving import Server, enabled
from restoring import address, archives_after_a_switch, insert, now_on, series
from eucadb.workflow.deployment import Names, current_deployment

pytestmark = pytest.mark.slow
W = "services.database.worker."
cloud = module_cloud("restore")


def runs(env) -> list:
    return json.loads(env.run("workflow", "show", "-o", "json").stdout)


def run_state(env, run_id: int) -> str:
    return json.loads(env.run("workflow", "show", "--run", str(run_id), "-o", "json").stdout)["state"]


@pytest.fixture(scope="module")
def deployment(cloud, tmp_path_factory):
    env = sibling(cloud, tmp_path_factory.mktemp("deployment"),
                  **{W + "configured": "true", W + "backup.archive_timeout": "10"})
    server = Server(env, free_port())
    try:
        server.wait(enabled, 300)
        yield env, server
    finally:
        server.stop()
        env.run("workflow", "teardown", "--delete-volume", check=False)


def refused(env, *args: str) -> str:
    done = env.run("backup", "restore", *args, check=False)
    assert done.returncode == 1, done
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_bad_restore_requests_are_refused_in_one_line_and_change_nothing(deployment):
    env, server = deployment
    before_runs, before_volumes = runs(env), json.loads(env.run("backup", "volumes", "-o", "json").stdout)
    assert "no restorable backup '20200101T000000'" in refused(env, "20200101T000000")
    assert "in the future" in refused(env, "--time", "2999-01-01T00:00:00Z")
    assert "before the earliest restorable time" in refused(env, "--time", "2001-01-01T00:00:00Z")
    assert "not an ISO 8601 time" in refused(env, "--time", "yesterday")
    assert "one of them" in refused(env)
    assert runs(env) == before_runs
    assert json.loads(env.run("backup", "volumes", "-o", "json").stdout) == before_volumes


def test_restore_to_a_time_then_to_a_backup_on_new_volumes(deployment):
    env, server = deployment
    db = address(server)
    old_volume = [v for v in json.loads(env.run("backup", "volumes", "-o", "json").stdout)
                  if v["role"] == "current"][0]["volume_id"]
    insert(env, db, range(1, 6))                                                    # A
    made = json.loads(env.run("backup", "create", "--name", "restore-base", "-o", "json").stdout)
    insert(env, db, range(101, 106))                                                # B
    target = now_on(env, db)
    time.sleep(1.5)
    insert(env, db, range(201, 206))                                                # C

    started = time.monotonic()
    done = env.run("backup", "restore", "--time", target, "-o", "json", timeout=1800)
    restore_seconds = time.monotonic() - started
    result = json.loads(done.stdout)
    assert result["state"] == "succeeded" and result["backup_id"] == made["backup_id"]
    assert set(result["services"].values()) == {"ENABLED"}
    assert result["retired_volume"] == old_volume and result["volume_id"] != old_volume
    doc = server.wait(enabled, 300)
    assert {s["state"] for s in doc["services"].values()} == {"ENABLED"}
    db = address(server)
    assert series(env, db) == [*range(1, 6), *range(101, 106)]                      # A and B, not C
    volumes = {v["volume_id"]: v for v in json.loads(env.run("backup", "volumes", "-o", "json").stdout)}
    assert volumes[old_volume]["role"] == "retired" and volumes[old_volume]["replaced_by"] == result["volume_id"]
    assert volumes[old_volume]["state"] == "available"                               # kept, detached
    assert volumes[result["volume_id"]]["role"] == "current"
    assert volumes[result["volume_id"]]["restored_from"] == made["backup_id"]
    print(f"\nrestore to a time: {restore_seconds:.1f}s from request to services ENABLED")

    insert(env, db, range(301, 303))        # the restored database accepts writes
    assert archives_after_a_switch(env, db).startswith("00000002")   # and archives, on a new timeline
    done = env.run("backup", "restore", made["backup_id"], "-o", "json", timeout=1800)
    second = json.loads(done.stdout)
    assert second["state"] == "succeeded" and second["retired_volume"] == result["volume_id"]
    assert series(env, address(server)) == [*range(1, 6)]                            # A only
    kinds = [r["kind"] for r in runs(env)]
    assert "restore" in kinds
    vols = env.client("ec2").describe_volumes(Filters=[
        {"Name": "tag:eucadb:deployment", "Values": [current_deployment(env.app().store)]}])["Volumes"]
    assert len(vols) == 3 and sum(1 for v in vols for t in v.get("Tags", [])
                                  if t == {"Key": "Name", "Value": Names(current_deployment(env.app().store)).volume}) == 1


def test_a_restore_resumes_after_a_kill_9_of_serve_without_a_second_volume(deployment):
    """Last: it replaces the module's server. serve is killed (SIGKILL, a fault point) right after
    the restore made its new volume; the next serve resumes the persisted run from there."""
    env, server = deployment
    listed = json.loads(env.run("backup", "list", "-o", "json").stdout)
    if not listed:                          # run alone: the backup the test above makes
        insert(env, address(server), range(1, 6))
        listed = [json.loads(env.run("backup", "create", "--name", "restore-base", "-o", "json").stdout)]
    backup_id = [b for b in listed if b["backup_name"] == "restore-base"][0]["backup_id"]
    server.stop()
    doomed = Server(env, free_port(), EUCADB_FAULT="kill:restore_volume:after")
    healed = None
    try:
        doomed.wait(enabled, 300)
        started = json.loads(env.run("backup", "restore", backup_id, "--no-wait", "-o", "json").stdout)
        assert doomed.proc.wait(timeout=600) == -9                                   # killed mid-restore
        run = [r for r in runs(env) if r["run"] == started["run"]][0]
        assert run["state"] == "running"
        assert {s["name"]: s["state"] for s in run["steps"]}["restore_volume"] == "done"

        healed = Server(env, free_port())
        doc = healed.wait(lambda d: enabled(d) and run_state(env, started["run"]) != "running", 900)
        assert run_state(env, started["run"]) == "succeeded"
        assert {s["state"] for s in doc["services"].values()} == {"ENABLED"}
        assert series(env, address(healed)) == [*range(1, 6)]
        made = [v for v in json.loads(env.run("backup", "volumes", "-o", "json").stdout)
                if v["role"] == "current"]
        assert len(made) == 1 and made[0]["restored_from"] == backup_id
        tokens = [t["Value"] for v in env.client("ec2").describe_volumes()["Volumes"]
                  for t in v.get("Tags", []) if t["Key"] == "eucadb:restore" and t["Value"] == started["token"]]
        assert tokens == [started["token"]]                                          # one volume, not two
    finally:
        for proc in (doomed, healed):
            if proc is not None and proc.proc.poll() is None:
                proc.stop()


def test_teardown_that_deletes_the_data_deletes_the_volumes_restores_kept(deployment):
    """`teardown` keeps every volume (the current one and those the restores above retired);
    `teardown --delete-volume` — "delete the data" — leaves none of the deployment's volumes."""
    env, server = deployment
    if server.proc.poll() is None:
        server.stop()
    deployment_id = current_deployment(env.app().store)
    mine = [{"Name": "tag:eucadb:deployment", "Values": [deployment_id]}]
    listed = json.loads(env.run("backup", "volumes", "-o", "json").stdout)
    if not any(v["role"] == "retired" for v in listed):     # run alone: make one restore first
        healed = Server(env, free_port())
        try:
            healed.wait(enabled, 300)
            insert(env, address(healed), range(1, 3))
            made = json.loads(env.run("backup", "create", "--name", "teardown", "-o", "json").stdout)
            env.run("backup", "restore", made["backup_id"], "-o", "json", timeout=1800)
        finally:
            healed.stop()
    ec2 = env.client("ec2")
    before = ec2.describe_volumes(Filters=mine)["Volumes"]
    assert len(before) >= 2 and any(t["Key"] == "eucadb:retired" for v in before for t in v.get("Tags", []))
    env.run("workflow", "teardown")
    assert {v["VolumeId"] for v in ec2.describe_volumes(Filters=mine)["Volumes"]} == {v["VolumeId"] for v in before}
    env.run("workflow", "teardown", "--delete-volume")
    assert [v["VolumeId"] for v in ec2.describe_volumes(Filters=mine)["Volumes"]
            if v["State"] not in ("deleting", "deleted")] == []
