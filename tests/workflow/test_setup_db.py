"""setup_db.py's database part on a real PostgreSQL, without a cloud.

The cloud half (IMDS, Secrets Manager, attach) is exercised by the launch tests against the embedded
cloud; here `setup_database` gets its inputs directly: user-data built by eucadb, a key, a directory as
the data disk and a random 127.x.y.z as the private IP. Clients connect from 127.0.0.1 (Linux picks it
as the source address for every loopback destination), which is what the pg_hba tests rely on.
"""
from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from eucadb.workflow import credentials, pki, userdata
from setup_db_script import load_setup_db

DEPLOYMENT = "d5e7db00"
DNS = f"db.{DEPLOYMENT}.eucadb.internal"
CW_DB, RP_DB = "eucalyptus_cloudwatch_backend", "eucalyptus_reporting_backend"


setup_db = load_setup_db("setup_db_db_test")


def run_as() -> dict:
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


def traversable_dir(prefix: str) -> Path:
    """A temp dir the `postgres` user can reach (pytest's tmp_path is 0700 under root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def material():
    ca_key, ca_cert = pki.create_ca("test CA")
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, DNS, days=30)
    work = traversable_dir("eucadb-setupdb-")
    ca_file = work / "ca.crt"
    ca_file.write_text(ca_cert)
    passphrase = credentials.new_password()
    # Stands in for the Secrets Manager fetch: outside every instance directory, readable by the DB user.
    pass_file = work / "passphrase"
    pass_file.write_text(passphrase + "\n")
    os.chmod(pass_file, 0o600)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(pass_file, pw.pw_uid, pw.pw_gid)
    yield {"ca": ca_cert, "key": key, "cert": cert, "ca_file": ca_file, "passphrase": passphrase,
           "command": f"cat {pass_file}"}
    shutil.rmtree(work, ignore_errors=True)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Instance:
    """One simulated DB instance: a root directory, a data disk directory, a private IP."""
    material: dict
    cidrs: list[str]
    init_script: str = ""
    root: Path = field(default_factory=lambda: traversable_dir("eucadb-inst-"))
    data: Path = field(default_factory=lambda: traversable_dir("eucadb-vol-"))
    ip: str = field(default_factory=lambda: f"127.{random.randint(1, 254)}.{random.randint(0, 254)}."
                                            f"{random.randint(1, 254)}")
    creds: dict = field(default_factory=credentials.generate)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.port = free_port(self.ip)

    def user_data(self):
        m = self.material
        text = userdata.build_user_data(
            deployment=DEPLOYMENT, endpoint_url=None, region="eucalyptus", secret_id="s", volume_id="vol-1",
            dns_name=DNS, server_cert=m["cert"], ca_cert=m["ca"], allowed_cidrs=self.cidrs,
            instance_type="t2.micro", init_script=self.init_script, ntp_server="",
            sealed_credentials=credentials.seal(json.dumps(self.creds).encode(), m["cert"], DEPLOYMENT),
            port=self.port)
        return setup_db.parse_user_data(text)

    def setup(self) -> list[str]:
        ud = self.user_data()
        key = self.material["key"].encode()
        passwords = setup_db.parse_credentials(setup_db.unseal(ud.credentials, key, DEPLOYMENT), ud)
        return setup_db.setup_database(setup_db.DbSetup(
            root=self.root, data_dir=self.data, private_ip=self.ip, user_data=ud, passwords=passwords,
            server_key_pem=key, key_passphrase=self.material["passphrase"],
            passphrase_command=self.material["command"]))

    def boot(self) -> None:
        """setup_db up to its exec, then run that argv as the foreground server would be."""
        argv = self.setup()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **run_as())
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, "postgres exited"
            try:
                self.admin_socket("postgres").close()
                return
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, "postgres did not become ready"
                time.sleep(0.1)

    def admin_socket(self, dbname: str):
        conn = psycopg2.connect(host=str(self.root / "run" / "eucadb"), port=self.port, dbname=dbname,
                                user=self.creds["admin"]["user"], password=self.creds["admin"]["password"])
        conn.autocommit = True
        return conn

    def connect(self, key: str, dbname: str, password: str | None = None, **overrides):
        args = dict(host=DNS, hostaddr=self.ip, port=self.port, dbname=dbname,
                    user=self.creds[key]["user"], password=password or self.creds[key]["password"],
                    sslmode="verify-full", sslrootcert=str(self.material["ca_file"]), connect_timeout=5)
        args.update(overrides)
        conn = psycopg2.connect(**args)
        if "connection_factory" not in overrides:      # replication connections are always autocommit
            conn.autocommit = True
        return conn

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def instance(material):
    inst = Instance(material, ["127.0.0.1/32", "10.0.0.0/8"],
                    init_script="#!/bin/sh\necho ran > \"$PWD/init-ran\"\n")
    try:
        inst.boot()
        yield inst
    finally:
        inst.destroy()


def query(conn, text: str, args=()):
    with conn.cursor() as cur:
        cur.execute(text, args)
        return cur.fetchall() if cur.description else None


def test_writers_connect_with_verify_full_over_tls(instance):
    for key, db in (("cloudwatch", CW_DB), ("reporting", RP_DB)):
        conn = instance.connect(key, db)
        ssl, user, addr = query(conn, "SELECT s.ssl, current_user, inet_server_addr()::text "
                                      "FROM pg_stat_ssl s "
                                      "WHERE s.pid = pg_backend_pid()")[0]
        assert ssl and user == instance.creds[key]["user"] and addr == f"{instance.ip}/32"
        conn.close()
    conn = instance.connect("admin", "postgres")
    assert query(conn, "SHOW ssl_min_protocol_version")[0][0] == "TLSv1.2"
    assert query(conn, "SHOW password_encryption")[0][0] == "scram-sha-256"
    assert query(conn, "SHOW data_checksums")[0][0] == "on"
    assert query(conn, "SHOW listen_addresses")[0][0] == instance.ip
    assert query(conn, "SHOW shared_buffers")[0][0] == "256MB"
    conn.close()


@pytest.mark.parametrize("change, message", [
    ({"sslmode": "disable"}, "no pg_hba.conf entry"),
    ({"password": "wrong-password"}, "password authentication failed"),
    ({"host": "db.other.eucadb.internal"}, "does not match host name"),
    ({"dbname": RP_DB}, "no pg_hba.conf entry"),       # a writer only reaches its own database
    ({"dbname": "postgres"}, "no pg_hba.conf entry"),
])
def test_refused_connections(instance, change, message):
    with pytest.raises(psycopg2.OperationalError, match=message):
        change = dict(change)
        instance.connect("cloudwatch", change.pop("dbname", CW_DB), **change)


def test_replication_role_only_for_replication(instance):
    with pytest.raises(psycopg2.OperationalError, match="no pg_hba.conf entry"):
        instance.connect("replication", "postgres")
    conn = instance.connect("replication", "postgres",
                            connection_factory=psycopg2.extras.PhysicalReplicationConnection)
    with conn.cursor() as cur:
        cur.execute("IDENTIFY_SYSTEM")
        assert cur.fetchone()[0]               # the system identifier: a physical walsender answered
    conn.close()


def test_writers_may_select_and_insert_only(instance):
    admin = instance.connect("admin", CW_DB)
    query(admin, "CREATE TABLE IF NOT EXISTS datapoints (id bigserial, v double precision)")
    writer = instance.connect("cloudwatch", CW_DB)
    query(writer, "INSERT INTO datapoints (v) VALUES (1.5)")
    assert query(writer, "SELECT count(*) FROM datapoints")[0][0] >= 1
    for statement in ("UPDATE datapoints SET v = 2", "DELETE FROM datapoints", "TRUNCATE datapoints",
                      "CREATE TABLE mine (x int)", "DROP TABLE datapoints"):
        with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable)):
            query(writer, statement)
    writer.close()
    admin.close()


def test_hba_holds_only_hostssl_scram_from_allowed_cidrs(instance):
    lines = [line.split() for line in (instance.data / "pgdata" / "pg_hba.conf").read_text().splitlines()
             if line and not line.startswith("#")]
    # the socket: the admin only, by peer authentication of the server's own OS user and root
    assert lines[0] == ["local", "all", "eucadb_admin", "peer", "map=eucadb_local"]
    ident = [line.split() for line in (instance.data / "pgdata" / "pg_ident.conf").read_text().splitlines()
             if line and not line.startswith("#")]
    server_user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert {tuple(e) for e in ident} == {("eucadb_local", u, "eucadb_admin") for u in (server_user, "root")}
    assert {entry[0] for entry in lines[1:]} == {"hostssl"}
    assert {entry[3] for entry in lines[1:]} == {"127.0.0.1/32", "10.0.0.0/8"}
    assert {entry[-1] for entry in lines[1:]} == {"scram-sha-256"}
    assert not (instance.root / "run" / "eucadb" / "setup_hba.conf").exists()
    assert oct((instance.root / "run" / "eucadb").stat().st_mode & 0o777) == "0o700"


def test_init_script_ran_and_was_removed(instance):
    assert (instance.root / "init-ran").read_text().strip() == "ran"
    assert not list((instance.root / "run").glob("eucadb-init-*"))


def test_no_plaintext_secret_on_disk(instance):
    key_body = [line for line in instance.material["key"].splitlines() if not line.startswith("-----")]
    key_der = pki.load_private_key(instance.material["key"]).private_bytes(
        pki.serialization.Encoding.DER, pki.serialization.PrivateFormat.PKCS8,
        pki.serialization.NoEncryption())
    needles = [e["password"].encode() for e in instance.creds.values()]
    needles += [instance.material["passphrase"].encode(), key_body[1].encode(), key_body[-2].encode(),
                key_der[40:80]]
    scanned = 0
    for top in (instance.root, instance.data):
        for path in top.rglob("*"):
            if path.is_file() and not path.is_symlink():
                blob = path.read_bytes()
                scanned += 1
                for needle in needles:
                    assert needle not in blob, f"a secret is in {path}"
    assert scanned > 100
    assert (instance.data / "pgdata" / "server.key").read_text().startswith(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_second_boot_keeps_data_applies_new_password_and_cidrs(material):
    inst = Instance(material, ["127.0.0.2/32"])
    try:
        inst.boot()
        with pytest.raises(psycopg2.OperationalError, match="no pg_hba.conf entry"):
            inst.connect("cloudwatch", CW_DB)      # we come from 127.0.0.1, not 127.0.0.2
        admin = inst.admin_socket(CW_DB)           # local socket, admin by peer (root)
        query(admin, "CREATE TABLE events (n int)")
        query(admin, "INSERT INTO events SELECT generate_series(1, 10)")
        query(admin, "CREATE TABLE metric_rollup_1m (n int)")   # CloudWatch tiers: maintenance writes them
        admin.close()
        inst.stop()

        old = inst.creds["cloudwatch"]["password"]
        inst.creds = credentials.rotate(inst.creds, ("cloudwatch", "admin"))
        inst.cidrs = ["127.0.0.1/32"]
        inst.boot()
        writer = inst.connect("cloudwatch", CW_DB)
        assert query(writer, "SELECT count(*) FROM events")[0][0] == 10
        query(writer, "INSERT INTO events VALUES (11)")    # grants on tables made before this boot
        assert query(writer, "SELECT count(*) FROM metric_rollup_1m")[0][0] == 0
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(writer, "INSERT INTO metric_rollup_1m VALUES (1)")
        writer.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            inst.connect("cloudwatch", CW_DB, password=old)
        inst.connect("admin", "postgres").close()          # the admin's new password took effect too
    finally:
        inst.destroy()


def test_foreign_data_disk_is_refused_and_left_untouched(material):
    inst = Instance(material, ["127.0.0.1/32"])
    try:
        (inst.data / "important.db").write_bytes(b"someone else's data")
        os.mkdir(inst.data / "dir")
        before = sorted(p.name for p in inst.data.iterdir())
        with pytest.raises(setup_db.ForeignVolume, match="no eucadb marker"):
            inst.setup()
        assert sorted(p.name for p in inst.data.iterdir()) == before
        assert (inst.data / "important.db").read_bytes() == b"someone else's data"
    finally:
        inst.destroy()


def test_cluster_of_another_major_is_refused(material):
    inst = Instance(material, ["127.0.0.1/32"])
    try:
        (inst.data / setup_db.MARKER).write_text(json.dumps({"eucadb": 1, "deployment": DEPLOYMENT}))
        (inst.data / "pgdata").mkdir()
        (inst.data / "pgdata" / "PG_VERSION").write_text("11\n")
        with pytest.raises(setup_db.ForeignVolume, match="PostgreSQL 11 cluster"):
            inst.setup()
        assert sorted(p.name for p in (inst.data / "pgdata").iterdir()) == ["PG_VERSION"]
    finally:
        inst.destroy()


def test_memory_settings_follow_the_instance_type():
    assert setup_db.memory_settings("m1.large")["shared_buffers"] == "1920MB"
    assert setup_db.memory_settings("unknown.type") == setup_db.memory_settings("t2.micro")
