"""Backups end to end, on the embedded cloud with real PostgreSQL and real Barman Cloud.

The instance archives its WAL to the deployment's bucket as it goes; `eucadb backup create` makes the
instance take a base backup; and a point-in-time restore from the bucket alone, into a new data
directory, gives back exactly what was committed up to the chosen time.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from e2e import module_cloud, sibling
from pg import PG_BIN, free_port, give_to_postgres, new_root, run_as
from serving import Server, enabled, writer_connect
from eucadb.backup import barman, snapshots
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.runtime import build_runtime
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import Names, current_deployment

pytestmark = pytest.mark.slow
W = "services.database.worker."
cloud = module_cloud("backups")


def admin_connect(env, address: str, dbname: str = "postgres"):
    app = env.app()
    vault = app.vault(current_deployment(app.store))
    login = vault.db_logins()[ADMIN]
    conn = psycopg2.connect(**vault.db_endpoint(address).connect_args(login["user"], login["password"], dbname))
    conn.autocommit = True
    return conn


def insert(env, address: str, series: range) -> None:
    with writer_connect(env, address) as conn, conn.cursor() as cur:
        for i in series:
            cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum, unit)"
                        " VALUES (%s, now(), 1, 1, 1, 1, 'pitr')", (i,))


def wait_archived(env, address: str, timeout: float = 120) -> float:
    """Seconds until the WAL segment now being written is in the bucket (pg_stat_archiver)."""
    start = time.monotonic()
    with admin_connect(env, address) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
        segment = cur.fetchone()[0]
        while time.monotonic() - start < timeout:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver")
            archived, failed, failed_wal = cur.fetchone()
            if archived and archived[:24] >= segment:
                return time.monotonic() - start
            time.sleep(0.5)
    raise AssertionError(f"segment {segment} not archived in {timeout}s (last archived {archived}, "
                         f"failed {failed}, last failed {failed_wal})")


def restore_to(env, backup_id: str, target: str) -> tuple[Path, int]:
    """barman-cloud-restore into a new data directory, then PostgreSQL recovering from the bucket's
    WAL (barman-cloud-wal-restore) to `target` and promoting; returns (root, port) once promoted.
    Run as `postgres` with the embedded image's runtime, which that user can read."""
    config = env.app().config
    names, endpoint = Names(current_deployment(env.app().store)), barman.endpoint_of(config)
    root = new_root("eucadb-pitr-")
    pgdata = root / "data"
    cmd = barman.argv("cloud_restore", names, endpoint)
    cmd[0] = str(_instance_python(config))
    subprocess.run([*cmd, backup_id, str(pgdata)], check=True, capture_output=True,
                   env=barman.environ(config), **run_as())
    give_to_postgres(pgdata, 0o700)
    return recover(env, root, target)


def _instance_python(config) -> Path:
    return build_runtime(Layout.from_config(config), config["cloud.instance_python"]) / "bin" / "python"


def recover(env, root: Path, target: str) -> tuple[Path, int]:
    """Start PostgreSQL on `root`/data as a point-in-time recovery from the bucket's WAL to `target`,
    promoting there; (root, port) once it accepts writes."""
    config = env.app().config
    names, endpoint = Names(current_deployment(env.app().store)), barman.endpoint_of(config)
    pgdata = root / "data"
    restore = barman.argv("cloud_walrestore", names, endpoint)
    restore[0] = str(_instance_python(config))
    (root / "hba.conf").write_text("local all all trust\n")
    give_to_postgres(root / "hba.conf", 0o644)
    (pgdata / "recovery.signal").touch()
    give_to_postgres(pgdata / "recovery.signal", 0o600)
    port = free_port()
    settings = {
        "restore_command": " ".join(restore) + " %f %p", "recovery_target_time": target,
        "recovery_target_action": "promote", "recovery_target_inclusive": "true",
        # the instance's own settings that make no sense here: its address, TLS, archive, logs
        "listen_addresses": "", "port": str(port), "unix_socket_directories": str(root),
        "ssl": "off", "archive_mode": "off", "logging_collector": "off",
        "hba_file": str(root / "hba.conf"),
    }
    subprocess.run([PG_BIN / "pg_ctl", "-D", pgdata, "-l", root / "log", "-o",
                    " ".join(f"-c {k}='{v}'" for k, v in settings.items()), "start"],
                   check=True, capture_output=True, env=barman.environ(config), **run_as())
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with psycopg2.connect(host=str(root), port=port, user=_admin(env), dbname="postgres") as conn:
                cur = conn.cursor()
                cur.execute("SELECT pg_is_in_recovery()")
                if not cur.fetchone()[0]:
                    return root, port
        except psycopg2.OperationalError:
            pass
        time.sleep(0.5)
    raise AssertionError("restored server never promoted:\n" + (root / "log").read_text()[-3000:])


def _admin(env) -> str:
    app = env.app()
    return app.vault(current_deployment(app.store)).db_logins()[ADMIN]["user"]


@pytest.fixture(scope="module")
def deployment(cloud, tmp_path_factory):
    """A running deployment archiving every 10 s; (env, server, database address)."""
    env = sibling(cloud, tmp_path_factory.mktemp("deployment"),
                  **{W + "configured": "true", W + "backup.archive_timeout": "10"})
    server = Server(env, free_port())
    try:
        doc = server.wait(enabled, 300)
        yield env, server, doc["database"]["endpoint"].split(":")[0]
    finally:
        server.stop()
        env.run("workflow", "teardown", "--delete-volume", check=False)


def test_bad_backup_names_are_refused_in_one_line(deployment):
    env, _, _ = deployment
    bad = env.run("backup", "create", "--name", "no spaces; please", check=False)
    assert bad.returncode == 1 and "backup name 'no spaces; please'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert json.loads(env.run("backup", "list", "-o", "json").stdout) == []   # nothing was made


def test_point_in_time_restore_from_the_bucket_gives_back_what_was_committed_by_then(deployment):
    env, server, address = deployment
    root = None
    try:
        insert(env, address, range(1, 6))                                          # A

        made = json.loads(env.run("backup", "create", "--name", "pitr-base", "-o", "json").stdout)
        assert made["status"] == "DONE" and made["backup_name"] == "pitr-base"
        assert made["begin_wal"] and made["end_wal"] and made["end_time"]
        listed = json.loads(env.run("backup", "list", "-o", "json").stdout)
        assert [b["backup_id"] for b in listed] == [made["backup_id"]]
        again = env.run("backup", "create", "--name", "pitr-base", check=False)
        assert again.returncode == 1 and "exists already" in again.stderr

        insert(env, address, range(101, 106))                                      # B
        with admin_connect(env, address) as conn, conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()::text")
            target = cur.fetchone()[0]
        time.sleep(1.5)
        insert(env, address, range(201, 206))                                      # C
        lag = wait_archived(env, address)      # no pg_switch_wal: archive_timeout must ship it
        with admin_connect(env, address) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")
            size = cur.fetchone()[0]
        print(f"\nbase backup of {size}: {made['seconds']}s; C's WAL segment archived {lag:.1f}s after commit")

        status = server.wait(lambda d: (d.get("database", {}).get("archiver") or {}).get("last_archived_time"), 60)
        assert status["database"]["archiver"]["failed_count"] == 0

        root, port = restore_to(env, made["backup_id"], target)
        with psycopg2.connect(host=str(root), port=port, user=_admin(env),
                              dbname="eucalyptus_cloudwatch_backend") as conn:
            cur = conn.cursor()
            cur.execute("SELECT series_id FROM metric_datapoints WHERE unit = 'pitr' ORDER BY 1")
            series = [r[0] for r in cur.fetchall()]
        assert series == [*range(1, 6), *range(101, 106)]     # A and B, not C
    finally:
        if root is not None:
            subprocess.run([PG_BIN / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"],
                           capture_output=True, **run_as())
            shutil.rmtree(root, ignore_errors=True)


def test_a_snapshot_backup_restores_to_a_point_in_time(deployment):
    """`backup create --kind snapshot`: pg_backup_start → CreateSnapshot → pg_backup_stop. A volume
    made from the snapshot, with the backup's label as backup_label and WAL from the bucket, recovers
    to T: rows A (before the backup) and B (after it, before T) present, C (after T) absent."""
    env, _, address = deployment
    root = None
    try:
        insert(env, address, range(1001, 1006))                                    # A
        made = json.loads(env.run("backup", "create", "--kind", "snapshot", "--name", "snap-base",
                                  "-o", "json").stdout)
        assert made["kind"] == "snapshot" and made["status"] == "DONE" and made["backup_id"].startswith("snap-")
        assert made["begin_wal"] <= made["end_wal"]
        listed = {b["backup_id"]: b for b in json.loads(env.run("backup", "list", "-o", "json").stdout)}
        assert listed[made["backup_id"]]["kind"] == "snapshot"
        ec2 = env.client("ec2")
        [snap] = ec2.describe_snapshots(SnapshotIds=[made["backup_id"]])["Snapshots"]
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert tags["eucadb:backup-state"] == "done" and tags["eucadb:backup-name"] == "snap-base"
        insert(env, address, range(1101, 1106))                                    # B
        with admin_connect(env, address) as conn, conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()::text")
            target = cur.fetchone()[0]
        time.sleep(1.5)
        insert(env, address, range(1201, 1206))                                    # C
        wait_archived(env, address)

        # what a restore does on the instance: a volume from the snapshot, the label put back
        app = env.app()
        names = Names(current_deployment(app.store))
        meta = snapshots.metadata(app, names, made["backup_id"])
        volume = ec2.create_volume(SnapshotId=made["backup_id"], AvailabilityZone=snap.get("AvailabilityZone")
                                   or ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"])
        source = Layout.from_config(app.config).volume_dir(volume["VolumeId"]) / "pgdata"
        root = new_root("eucadb-snap-")
        subprocess.run(["cp", "-a", source, root / "data"], check=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", root / "data"], check=True)
        (root / "data" / "postmaster.pid").unlink(missing_ok=True)   # the source's, still running
        (root / "data" / "backup_label").write_text(meta["backup_label"])
        give_to_postgres(root / "data" / "backup_label", 0o600)
        root, port = recover(env, root, target)
        with psycopg2.connect(host=str(root), port=port, user=_admin(env),
                              dbname="eucalyptus_cloudwatch_backend") as conn:
            cur = conn.cursor()
            cur.execute("SELECT series_id FROM metric_datapoints WHERE unit = 'pitr' AND series_id > 1000 ORDER BY 1")
            series = [r[0] for r in cur.fetchall()]
        assert series == [*range(1001, 1006), *range(1101, 1106)]     # A and B, not C
        ec2.delete_volume(VolumeId=volume["VolumeId"])
    finally:
        if root is not None:
            subprocess.run([PG_BIN / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"],
                           capture_output=True, **run_as())
            shutil.rmtree(root, ignore_errors=True)


def test_an_interrupted_snapshot_backup_is_never_listed_and_is_cleaned_up(deployment):
    """A control plane killed between pg_backup_start and pg_backup_stop leaves a snapshot tagged
    `started`: it is not offered as a backup, and the next snapshot backup deletes it."""
    env, _, address = deployment
    app = env.app()
    deployment_id = current_deployment(app.store)
    names = Names(deployment_id)
    ec2 = env.client("ec2")
    volume = snapshots.data_volume(app, deployment_id, address)
    half = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        *names.tags(), {"Key": snapshots.NAME_TAG, "Value": "half"},
        {"Key": snapshots.STATE_TAG, "Value": "started"}]}])["SnapshotId"]
    listed = json.loads(env.run("backup", "list", "-o", "json").stdout)
    assert half not in {b["backup_id"] for b in listed} and "half" not in {b["backup_name"] for b in listed}
    env.run("backup", "create", "--kind", "snapshot", "--name", "after-half")
    assert ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [half]}])["Snapshots"] == []
    bad = env.run("backup", "create", "--kind", "tape", check=False)
    assert bad.returncode == 2 and "'tape' is not one of 'object', 'snapshot'" in bad.stderr


def test_a_failing_archive_shows_in_status(deployment):
    """The bucket goes away under the instance (the embedded S3 does not check credentials yet, so
    this is the failure it can have): PostgreSQL keeps running, and status says archiving fails.
    Last: it destroys the backups."""
    env, server, address = deployment
    s3, bucket = env.client("s3"), Names(current_deployment(env.app().store)).backup_bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if page.get("Contents"):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in page["Contents"]]})
    s3.delete_bucket(Bucket=bucket)
    insert(env, address, range(301, 303))
    with admin_connect(env, address) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
        segment = cur.fetchone()[0]
    doc = server.wait(lambda d: ((d.get("database") or {}).get("archiver") or {}).get("failed_count"), 120)
    archiver = doc["database"]["archiver"]
    assert archiver["last_failed_wal"] == segment and archiver["last_archived_wal"] < segment
    assert "FAILED, last " + segment in env.run("status", EUCADB_SERVE_PORT=str(server.port)).stdout
    metrics = dict(line.rsplit(" ", 1) for line in server.get("/metrics")[1].splitlines()
                   if line.startswith("eucadb_wal_"))
    assert float(metrics["eucadb_wal_archive_failures_total"]) >= 1
    assert float(metrics["eucadb_wal_archived_total"]) >= 1 and "eucadb_wal_last_archived_timestamp_seconds" in metrics
