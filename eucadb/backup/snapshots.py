"""Volume-snapshot base backups: `pg_backup_start` → EC2 CreateSnapshot of the data volume →
`pg_backup_stop`, the mechanism the cloud itself offers for bulky data.

Why the backup bracket around a snapshot: a snapshot is at best crash-consistent (on the embedded
cloud the instance is frozen while its volume is copied; on EBS the snapshot is a point in time of
one volume), and a crash-consistent copy can only be brought forward by WAL replay if PostgreSQL
knows where the replay must start and where the copy becomes consistent. `pg_backup_start` forces a
checkpoint and records the start; `pg_backup_stop(wait_for_archive => true)` returns the backup
label — what must be in PGDATA as `backup_label` at restore — once the WAL up to the stop point is
in the archive. So a snapshot backup plus the archived WAL restores to any time after its stop.

Where the backup's metadata lives: the label and the LSN/time range are kept as a JSON object in the
deployment's backup bucket, next to Barman's catalogue (`<prefix>/snapshots/<snapshot id>.json`),
and summarised in the snapshot's tags. A snapshot is listed as restorable only once that object
exists and the snapshot is tagged `eucadb:backup-state=done`: an interrupted backup (the control
plane killed between start and stop) is never offered for a restore, and is deleted by the next
`backup create` that finds it.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import psycopg2
from botocore.exceptions import ClientError

from eucadb.app import App
from eucadb.errors import EucadbError
from eucadb.retry import NotYet, Retry
from eucadb.workflow.deployment import TAG, Names

KIND = "snapshot"
STATE_TAG = "eucadb:backup-state"
NAME_TAG = "eucadb:backup-name"
SNAPSHOT_DEADLINE = 3600.0     # a big volume's first snapshot on a real cloud takes a while


def metadata_key(names: Names, snapshot_id: str) -> str:
    return f"{names.backup_prefix}/snapshots/{snapshot_id}.json"


def data_volume(app: App, deployment: str, address: str) -> str:
    """The data volume of the instance behind `address` (the database's own device, /dev/sdf)."""
    from eucadb.workflow.userdata import DEFAULT_DEVICE
    reservations = app.clients.call("ec2", "describe_instances", Filters=[
        {"Name": f"tag:{TAG}", "Values": [deployment]}, {"Name": "private-ip-address", "Values": [address]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    for instance in (i for r in reservations for i in r["Instances"]):
        for mapping in instance.get("BlockDeviceMappings", []):
            if mapping["DeviceName"] == DEFAULT_DEVICE:
                return mapping["Ebs"]["VolumeId"]
    raise EucadbError(f"no running instance of deployment {deployment} at {address} has a data volume "
                      f"attached as {DEFAULT_DEVICE}")


def take(app: App, deployment: str, conn, address: str, name: str) -> dict[str, Any]:
    """One snapshot backup through `conn` (an admin session to the primary); its catalogue entry."""
    names = Names(deployment)
    volume = data_volume(app, deployment, address)
    _forget_interrupted(app, deployment)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backup_start(%s, true), pg_walfile_name(pg_current_wal_lsn()), now()", (name,))
        start_lsn, begin_wal, begin_time = cur.fetchone()
        try:
            snapshot = _snapshot(app, names, volume, name, str(start_lsn), begin_time)
        except BaseException:
            cur.execute("SELECT pg_backup_stop(false)")   # end the bracket; nothing is listed
            raise
        try:
            cur.execute("SELECT lsn, labelfile, pg_walfile_name(lsn), now() FROM pg_backup_stop(true)")
        except psycopg2.Error as exc:
            raise EucadbError(f"pg_backup_stop failed ({str(exc).strip()}): snapshot {snapshot} is not a "
                              "backup and will be deleted by the next `backup create`") from None
        stop_lsn, label, end_wal, end_time = cur.fetchone()
    meta = {"backup_id": snapshot, "backup_name": name, "kind": KIND, "volume_id": volume,
            "begin_time": begin_time.isoformat(), "end_time": end_time.isoformat(),
            "begin_lsn": str(start_lsn), "end_lsn": str(stop_lsn), "begin_wal": begin_wal, "end_wal": end_wal,
            "backup_label": label}
    app.clients.call("s3", "put_object", Bucket=names.backup_bucket, Key=metadata_key(names, snapshot),
                     Body=json.dumps(meta, sort_keys=True).encode(), ContentType="application/json")
    app.clients.call("ec2", "create_tags", Resources=[snapshot], Tags=[
        {"Key": STATE_TAG, "Value": "done"}, {"Key": "eucadb:end-lsn", "Value": str(stop_lsn)},
        {"Key": "eucadb:end-time", "Value": end_time.isoformat()}])
    return _row(meta, volume_size=None)


def _snapshot(app: App, names: Names, volume: str, name: str, start_lsn: str, begin: dt.datetime) -> str:
    made = app.clients.call("ec2", "create_snapshot", VolumeId=volume, Description=f"eucadb backup {name}",
                            TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                *names.tags(f"{names.prefix}-backup-{name}"), {"Key": NAME_TAG, "Value": name},
                                {"Key": STATE_TAG, "Value": "started"},
                                {"Key": "eucadb:begin-lsn", "Value": start_lsn},
                                {"Key": "eucadb:begin-time", "Value": begin.isoformat()}]}])
    snapshot = made["SnapshotId"]

    def completed() -> None:
        state = app.clients.call("ec2", "describe_snapshots", SnapshotIds=[snapshot])["Snapshots"][0]["State"]
        if state == "error":
            raise EucadbError(f"snapshot {snapshot} of volume {volume} failed in the cloud")
        if state != "completed":
            raise NotYet(f"snapshot {snapshot} is {state}")
    Retry(deadline=SNAPSHOT_DEADLINE, max_delay=10, retry_on=(NotYet, ClientError)).call(
        completed, f"wait for snapshot {snapshot}")
    return snapshot


def _tagged(app: App, deployment: str) -> list[dict]:
    return app.clients.call("ec2", "describe_snapshots", OwnerIds=["self"], Filters=[
        {"Name": f"tag:{TAG}", "Values": [deployment]}, {"Name": "tag-key", "Values": [NAME_TAG]}])["Snapshots"]


def _tags(snapshot: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}


def _forget_interrupted(app: App, deployment: str) -> None:
    """Delete the snapshots of backups that never reached pg_backup_stop (a killed control plane)."""
    for snap in _tagged(app, deployment):
        if _tags(snap).get(STATE_TAG) != "done":
            app.clients.call("ec2", "delete_snapshot", SnapshotId=snap["SnapshotId"])


def list_snapshot_backups(app: App, deployment: str) -> list[dict[str, Any]]:
    """The finished snapshot backups, from their metadata objects (the tags only say which exist)."""
    names = Names(deployment)
    rows = []
    for snap in _tagged(app, deployment):
        if _tags(snap).get(STATE_TAG) != "done":
            continue
        meta = metadata(app, names, snap["SnapshotId"])
        if meta is not None:
            rows.append(_row(meta, snap.get("VolumeSize")))
    return rows


def metadata(app: App, names: Names, snapshot_id: str) -> dict | None:
    """The backup's metadata (label included), None when its object is missing."""
    try:
        body = app.clients.call("s3", "get_object", Bucket=names.backup_bucket,
                                Key=metadata_key(names, snapshot_id))["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def _row(meta: dict, volume_size: int | None) -> dict[str, Any]:
    return {"backup_id": meta["backup_id"], "backup_name": meta["backup_name"], "kind": KIND, "status": "DONE",
            "begin_time": meta["begin_time"], "end_time": meta["end_time"], "begin_wal": meta["begin_wal"],
            "end_wal": meta["end_wal"], "size": f"{volume_size} GiB volume" if volume_size else None,
            "begin_time_iso": meta["begin_time"], "end_time_iso": meta["end_time"]}


def delete(app: App, deployment: str, snapshot_id: str) -> None:
    """A snapshot backup goes: its metadata object first (so it is no longer listed), then the
    snapshot. The WAL it needed is Barman's to prune with its own backups."""
    names = Names(deployment)
    app.clients.call("s3", "delete_object", Bucket=names.backup_bucket, Key=metadata_key(names, snapshot_id))
    try:
        app.clients.call("ec2", "delete_snapshot", SnapshotId=snapshot_id)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
            raise
