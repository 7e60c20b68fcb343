"""A snapshot taken while real PostgreSQL is writing restores to a volume PostgreSQL starts from,
with every row committed before the snapshot and nothing torn (crash-consistent, checksums on);
the restored server runs next to its still-running source, as on two VMs."""
from __future__ import annotations

import os
import threading

import psycopg2
import pytest
from helpers import run_instance
from localcloud import wait_for

pytestmark = pytest.mark.slow


def _connect(ip: str):
    conn = psycopg2.connect(host=ip, port=5432, user="postgres", dbname="postgres", connect_timeout=2)
    conn.autocommit = True
    return conn


def _pg_instance(cloud, subnet: str, volume: str) -> tuple[str, str]:
    """A pg_boot instance with `volume` as /dev/sdf; returns (instance id, ip) once PG accepts."""
    instance = run_instance(cloud, cloud.images["pg_boot"], subnet)
    cloud.client("ec2").attach_volume(VolumeId=volume, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    ip = instance["PrivateIpAddress"]
    wait_for(lambda: _accepts(ip), 30, f"PostgreSQL on {ip}", interval=0.2)
    return instance["InstanceId"], ip


def _accepts(ip: str) -> bool:
    try:
        _connect(ip).close()
        return True
    except psycopg2.OperationalError:
        return False


class Writer(threading.Thread):
    """Inserts rows one transaction at a time; `committed` is the last id the server acknowledged."""

    def __init__(self, ip: str):
        super().__init__(daemon=True)
        self.conn = _connect(ip)
        self.committed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        cur = self.conn.cursor()
        while not self.stop.is_set():
            payload = f"row-{self.committed + 1}-" + "x" * 200
            cur.execute("INSERT INTO t (payload, digest) VALUES (%s, md5(%s)) RETURNING id", (payload, payload))
            self.committed = cur.fetchone()[0]
        self.conn.close()


def test_snapshot_under_write_load_restores_a_consistent_database(cloud, network):
    ec2 = cloud.client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    source_id, ip = _pg_instance(cloud, network["us-east-1a"], volume)
    with _connect(ip) as setup:
        setup.cursor().execute("CREATE TABLE t (id serial PRIMARY KEY, payload text, digest text)")
    writer = Writer(ip)
    writer.start()
    try:
        wait_for(lambda: writer.committed >= 200, 20, "rows being written")
        before = writer.committed
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        after = writer.committed
        wait_for(lambda: writer.committed > after + 50, 10, "writes continue after the thaw")
    finally:
        writer.stop.set()
        writer.join(10)
    if os.geteuid() != 0:
        # without PID namespaces (not root) the copy's postmaster.pid names the live source server
        ec2.terminate_instances(InstanceIds=[source_id])

    restored = ec2.create_volume(SnapshotId=snapshot, AvailabilityZone="us-east-1a")["VolumeId"]
    restored_id, restored_ip = _pg_instance(cloud, network["us-east-1a"], restored)
    with _connect(restored_ip) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*), min(id), max(id), count(*) FILTER (WHERE digest <> md5(payload)) FROM t")
        count, low, high, torn = cur.fetchone()
    assert torn == 0
    assert low == 1 and count == high, "a prefix of the committed rows, no gaps"
    assert before <= high <= after + 1, f"rows up to the snapshot: {before} <= {high} <= {after}+1"
    ec2.terminate_instances(InstanceIds=[restored_id, source_id])
    for vol in (volume, restored):
        ec2.delete_volume(VolumeId=vol)
    ec2.delete_snapshot(SnapshotId=snapshot)
