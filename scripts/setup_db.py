#!/usr/bin/env python3
"""eucadb's boot program: turns a bare instance into a TLS-only PostgreSQL holding the append-only DBs.

Runs unchanged on a real VM (`--root /`, as root under systemd) and in eucadb's embedded cloud
(`--root <instance dir>`, as an unprivileged user). Self-contained on purpose: stdlib, cryptography,
boto3/botocore and psycopg2 only — it cannot import eucadb.

    setup_db.py --root ROOT               boot: set up, then exec `postgres` as the foreground process
    setup_db.py --root ROOT passphrase    PostgreSQL's ssl_passphrase_command: print the key passphrase
    setup_db.py --root ROOT backup NAME   a Barman Cloud base backup of this server to the backup bucket
                                          (run by PostgreSQL for eucadb: COPY ... TO PROGRAM)

Backups: with `backup` in user-data, PostgreSQL archives every WAL segment with Barman Cloud
(`python -m barman.clients.cloud_walarchive`, gzip) to s3://BUCKET/PREFIX/db/wals, at the latest
every archive_timeout seconds. The instance has no inbound channel but PostgreSQL, so a base backup
is asked for over the admin's TLS session: the setting `eucadb.backup_command` names the `backup`
sub-command, which eucadb runs with COPY TO PROGRAM (superuser only); barman-cloud-backup then
reads PGDATA locally and logs in through the socket by peer authentication (the OS user that runs
PostgreSQL maps to the admin role only; no password). S3 credentials are the instance role's.

Boot: IMDSv2 (endpoint from AWS_EC2_METADATA_SERVICE_ENDPOINT, as botocore) → user-data → server key
from Secrets Manager through the instance role → unseal the DB credentials in memory → attach the data
volume → init the cluster if absent (refuse foreign data; never format or wipe) → TLS files, config,
pg_hba → init_script → temporary socket-only server for roles/databases/grants → exec postgres.

User-data (JSON; built by eucadb.workflow.userdata.build_user_data, parsed by `parse_user_data`):
    {"eucadb": 1, "deployment": str, "cloud": {"endpoint_url": str|null, "region": str},
     "secret_id": str, "volume_id": str, "device": "/dev/sdf", "port": 5432,
     "dns_name": "db.<deployment>.eucadb.internal", "server_cert": PEM, "ca_cert": PEM,
     "allowed_cidrs": [CIDR, ...], "instance_type": str,
     "databases": {"cloudwatch": name, "reporting": name},
     "roles": {"admin": name, "cloudwatch": name, "reporting": name, "replication": name},
     "init_script": str, "ntp_server": str, "credentials": <envelope>,
     "backup": {"bucket": str, "prefix": str, "archive_timeout": int}   (optional),
     "restore": {"token": str, "backup_id": str, "target_time": ISO 8601 | null}   (optional)}
`credentials` is an envelope (eucadb.workflow.credentials.seal) of
    {"<role key>": {"user": name, "password": str}, ...}  for the four role keys above.

Secrets Manager secret `secret_id`, SecretString JSON (written by eucadb's key-delivery step):
    {"private_key": PEM PKCS#8 server key (plain, or encrypted with key_passphrase),
     "key_passphrase": str}
The key stays in memory; PGDATA/server.key holds it encrypted with key_passphrase, which PostgreSQL gets
from the `passphrase` sub-command (fetched through the role again) — no plaintext key or password on
disk. Passwords reach PostgreSQL only as client-side SCRAM verifiers; initdb reads its one from a pipe.

Restore: with `restore` (and `backup`) in user-data and an empty data disk, the cluster comes from
the bucket instead of initdb: barman-cloud-restore of `backup_id` into a side directory, then
recovery with barman-cloud-wal-restore as restore_command to `target_time` (or, without one, to
the end of the backup: recovery_target=immediate) and `recovery_target_action=promote`. The
temporary server does the recovery; roles and passwords are applied once it has promoted. The disk
marker records the token, and the server's `eucadb.restore` setting shows it, so eucadb knows the
database it reaches is the restored one. A disk that already holds a cluster ignores the block.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import pwd
import re
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import psycopg2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg2 import sql

log = logging.getLogger("setup_db")
T = TypeVar("T")

USER_DATA_VERSION = 1
ROLE_KEYS = ("admin", "cloudwatch", "reporting", "replication")
WRITER_KEYS = ("cloudwatch", "reporting")
IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
MARKER = ".eucadb-volume"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KEY_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$")
BACKUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BACKUP_ID = re.compile(r"^[0-9]{8}T[0-9]{6}$")   # Barman's backup ids
ISO_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(Z|[+-][0-9:]+)?$")
RESTORE_DEADLINE = 3600        # the temporary server's recovery: WAL replay takes what it takes
BARMAN_SERVER = "db"           # Barman's server name: keys are PREFIX/db/wals/…, PREFIX/db/base/…
PG_LIB = Path("/usr/lib/postgresql")  # Debian's layout: one <major>/bin per installed version
INIT_SCRIPT_TIMEOUT = 600
DEFAULT_MEMORY_MIB = 1024
INSTANCE_MEMORY_MIB = {
    "t1.micro": 613, "t2.nano": 512, "t2.micro": 1024, "t2.small": 2048, "t2.medium": 4096,
    "t2.large": 8192, "t2.xlarge": 16384, "t3.micro": 1024, "t3.small": 2048, "t3.medium": 4096,
    "t3.large": 8192, "m1.small": 1740, "m1.medium": 3840, "m1.large": 7680, "m1.xlarge": 15360,
    "c1.medium": 1740, "c1.xlarge": 7168, "m3.medium": 3840, "m3.large": 7680, "m3.xlarge": 15360,
    "m5.large": 8192, "m5.xlarge": 16384, "r5.large": 16384,
}


class SetupError(Exception):
    """A boot step failed for good: main() logs the message and exits non-zero."""


class ForeignVolume(SetupError):
    """The data disk holds something that is not ours: refuse, never format or wipe."""


class NotYet(Exception):
    """A condition we poll for is not there yet."""


def until(what: str, fn: Callable[[], T], deadline: float, retry_on: tuple = (NotYet,)) -> T:
    """Call fn until it returns, retrying `retry_on` with capped backoff up to `deadline` seconds."""
    start = time.monotonic()
    delay, next_note = 0.2, start + 10
    while True:
        try:
            return fn()
        except retry_on as exc:
            now = time.monotonic()
            if now - start >= deadline:
                raise SetupError(f"{what}: gave up after {deadline:.0f}s: {exc}") from None
            if now >= next_note:                       # long waits say why, every ~10 s
                log.info("%s: still waiting (%s)", what, exc)
                next_note = now + 10
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- user-data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backup:
    """Where WAL and base backups go: Barman's destination is s3://bucket/prefix."""
    bucket: str
    prefix: str
    archive_timeout: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_backup(doc: Any) -> Backup | None:
    """user-data's optional `backup` object (absent: no archiving); names end up in a shell command."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise SetupError("user-data: 'backup' is not an object")
    bucket, prefix, timeout = doc.get("bucket"), doc.get("prefix"), doc.get("archive_timeout", 60)
    if not isinstance(bucket, str) or not BUCKET_NAME.fullmatch(bucket):
        raise SetupError(f"user-data: backup bucket {bucket!r} is not an S3 bucket name")
    if not isinstance(prefix, str) or not KEY_PREFIX.fullmatch(prefix) or len(prefix) > 200:
        raise SetupError(f"user-data: backup prefix {prefix!r} is not a plain key prefix")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 10 <= timeout <= 3600:
        raise SetupError(f"user-data: backup archive_timeout {timeout!r} is not 10..3600 seconds")
    return Backup(bucket, prefix, timeout)


@dataclass(frozen=True)
class Restore:
    """Make a new disk's cluster from a base backup plus WAL replay, not initdb."""
    token: str                   # which restore this is (eucadb waits for it: SHOW eucadb.restore)
    backup_id: str
    target_time: str | None      # None: the end of the backup (recovery_target = immediate)


def parse_restore(doc: Any) -> Restore | None:
    """user-data's optional `restore` object; its values end up in postgresql.conf and argv."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise SetupError("user-data: 'restore' is not an object")
    token, backup_id, target = doc.get("token"), doc.get("backup_id"), doc.get("target_time")
    if not isinstance(token, str) or not BACKUP_NAME.fullmatch(token):
        raise SetupError(f"user-data: restore token {token!r} is not a plain name")
    if not isinstance(backup_id, str) or not BACKUP_ID.fullmatch(backup_id):
        raise SetupError(f"user-data: restore backup_id {backup_id!r} is not a Barman backup id")
    if target is not None and (not isinstance(target, str) or not ISO_TIME.fullmatch(target)):
        raise SetupError(f"user-data: restore target_time {target!r} is not an ISO 8601 time")
    return Restore(token, backup_id, target)


@dataclass(frozen=True)
class Replication:
    """This instance is a streaming replica of `primary_address`, through physical slot `slot`."""
    member: int
    primary_address: str
    slot: str

    @property
    def application_name(self) -> str:
        return f"m{self.member}"   # what synchronous_standby_names on the primary lists


def parse_replication(doc: Any) -> Replication | None:
    """user-data's optional `replication` object (absent, or role primary: this is the primary)."""
    if doc is None or (isinstance(doc, dict) and doc.get("role") == "primary"):
        return None
    if not isinstance(doc, dict) or doc.get("role") != "replica":
        raise SetupError("user-data: 'replication' must be {\"role\": \"replica\", ...}")
    member, address, slot = doc.get("member"), doc.get("primary_address"), doc.get("slot")
    if not isinstance(member, int) or isinstance(member, bool) or not 0 <= member <= 99:
        raise SetupError(f"user-data: replication member {member!r} is not 0..99")
    try:
        address = str(ipaddress.ip_address(address))
    except (ValueError, TypeError):
        raise SetupError(f"user-data: replication primary_address {address!r} is not an IP address") from None
    if not isinstance(slot, str) or not IDENT.fullmatch(slot):
        raise SetupError(f"user-data: replication slot {slot!r} is not a plain identifier")
    return Replication(member, address, slot)


@dataclass(frozen=True)
class UserData:
    deployment: str
    endpoint_url: str | None
    region: str
    secret_id: str
    volume_id: str
    device: str
    port: int
    dns_name: str
    server_cert: str
    ca_cert: str
    allowed_cidrs: tuple[str, ...]
    instance_type: str
    databases: Mapping[str, str]
    roles: Mapping[str, str]
    init_script: str
    ntp_server: str
    credentials: Mapping[str, Any]
    backup: Backup | None = None
    restore: Restore | None = None
    replication: Replication | None = None


def parse_user_data(raw: bytes | str) -> UserData:
    """Validate the user-data document; names that end up in SQL or pg_hba must be plain identifiers."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SetupError(f"user-data is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("eucadb") != USER_DATA_VERSION:
        raise SetupError("user-data is not a eucadb v1 document")

    def need(key: str, kind: type = str) -> Any:
        if not isinstance(doc.get(key), kind) or (kind is str and not doc[key]):
            raise SetupError(f"user-data: {key!r} missing or not a {kind.__name__}")
        return doc[key]

    cloud = need("cloud", dict)
    roles, databases = need("roles", dict), need("databases", dict)
    if set(roles) != set(ROLE_KEYS) or set(databases) != set(WRITER_KEYS):
        raise SetupError(f"user-data: roles must name {ROLE_KEYS}, databases {WRITER_KEYS}")
    for name in [*roles.values(), *databases.values()]:
        if not isinstance(name, str) or not IDENT.fullmatch(name):
            raise SetupError(f"user-data: {name!r} is not a plain lower-case identifier")
    cidrs = []
    for cidr in doc.get("allowed_cidrs") or []:
        try:
            cidrs.append(str(ipaddress.ip_network(cidr, strict=False)))
        except (ValueError, TypeError):
            raise SetupError(f"user-data: {cidr!r} is not a CIDR block") from None
    if not cidrs:
        raise SetupError("user-data: allowed_cidrs is empty")
    port = doc.get("port", 5432)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise SetupError(f"user-data: bad port {port!r}")
    ntp = doc.get("ntp_server") or ""
    if ntp and not HOSTNAME.fullmatch(ntp):
        raise SetupError(f"user-data: ntp_server {ntp!r} is not a host name or address")
    return UserData(
        deployment=need("deployment"), endpoint_url=cloud.get("endpoint_url") or None,
        region=cloud.get("region") or "us-east-1", secret_id=need("secret_id"),
        volume_id=need("volume_id"), device=doc.get("device") or "/dev/sdf", port=port,
        dns_name=need("dns_name"), server_cert=need("server_cert"), ca_cert=need("ca_cert"),
        allowed_cidrs=tuple(cidrs), instance_type=doc.get("instance_type") or "",
        databases=dict(databases), roles=dict(roles), init_script=doc.get("init_script") or "",
        ntp_server=ntp, credentials=need("credentials", dict), backup=parse_backup(doc.get("backup")),
        restore=parse_restore(doc.get("restore")), replication=parse_replication(doc.get("replication")))


def parse_credentials(plaintext: bytes, ud: UserData) -> dict[str, str]:
    """Unsealed credentials → {role key: password}; the user names must agree with user-data."""
    try:
        doc = json.loads(plaintext)
    except ValueError:
        raise SetupError("unsealed credentials are not JSON") from None
    out = {}
    for key in ROLE_KEYS:
        entry = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str) \
                or not entry["password"]:
            raise SetupError(f"credentials: no password for role {key!r}")
        if entry.get("user", ud.roles[key]) != ud.roles[key]:
            raise SetupError(f"credentials: role {key!r} is {entry.get('user')!r} but user-data "
                             f"says {ud.roles[key]!r}")
        out[key] = entry["password"]
    return out


# --- envelope: byte-compatible copy of eucadb.workflow.credentials.unseal --------------------------
ENVELOPE_VERSION = 1
ENVELOPE_ALG = "RSA-OAEP-SHA256+A256GCM"


def envelope_aad(version: int, alg: str, kid: str, deployment_id: str) -> bytes:
    return json.dumps({"v": version, "alg": alg, "kid": kid, "deployment": deployment_id},
                      sort_keys=True, separators=(",", ":")).encode()


def unseal(envelope: Mapping[str, Any], private_key_pem: bytes | rsa.RSAPrivateKey,
           deployment_id: str) -> bytes:
    """Open a sealed envelope; SetupError says what is wrong (never what is inside)."""
    if envelope.get("v") != ENVELOPE_VERSION or envelope.get("alg") != ENVELOPE_ALG:
        raise SetupError(f"unsupported envelope v={envelope.get('v')!r} alg={envelope.get('alg')!r}")
    fields = {}
    for name in ("ek", "iv", "ct"):
        try:
            fields[name] = base64.b64decode(str(envelope.get(name, "")).encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise SetupError(f"malformed envelope: field {name!r}") from None
    key = (private_key_pem if isinstance(private_key_pem, rsa.RSAPrivateKey)
           else serialization.load_pem_private_key(private_key_pem, None))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SetupError("cannot unseal: the server key is not RSA")
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = hashlib.sha256(der).hexdigest()
    if envelope.get("kid") != kid:
        raise SetupError("credentials were sealed to a different key (kid mismatch)")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    try:
        data_key = key.decrypt(fields["ek"], oaep)
        return AESGCM(data_key).decrypt(fields["iv"], fields["ct"],
                                        envelope_aad(ENVELOPE_VERSION, ENVELOPE_ALG, kid, deployment_id))
    except (ValueError, InvalidTag):
        raise SetupError("credentials envelope failed authentication: wrong deployment or "
                         "tampered") from None


# --- instance metadata (IMDSv2) -----------------------------------------------------------------
class Imds:
    """IMDSv2 client: token PUT, then GETs; endpoint as botocore finds it."""

    def __init__(self, endpoint: str | None = None, timeout: float = 2.0):
        base = endpoint or os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254/"
        self.base, self.timeout, self._token = base.rstrip("/") + "/", timeout, ""

    def _open(self, req: urllib.request.Request) -> bytes:
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - fixed endpoint
            return resp.read()

    def get(self, path: str) -> bytes | None:
        """The value at `path` (None when the service answers 404), retried while unreachable."""
        def once() -> bytes | None:
            if not self._token:
                self._token = self._open(urllib.request.Request(
                    self.base + "latest/api/token", method="PUT",
                    headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})).decode()
            try:
                return self._open(urllib.request.Request(
                    self.base + path, headers={"X-aws-ec2-metadata-token": self._token}))
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401:
                    self._token = ""
                raise
        return until(f"metadata {path}", once, 60, (urllib.error.URLError, OSError))


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    availability_zone: str
    private_ip: str
    user_data: bytes


def instance_facts(imds: Imds) -> InstanceFacts:
    def text(path: str) -> str:
        value = imds.get(path)
        if not value:
            raise SetupError(f"metadata has no {path}")
        return value.decode().strip()
    user_data = imds.get("latest/user-data")
    if not user_data:
        raise SetupError("this instance has no user-data: not launched by eucadb?")
    return InstanceFacts(text("latest/meta-data/instance-id"),
                         text("latest/meta-data/placement/availability-zone"),
                         text("latest/meta-data/local-ipv4"), user_data)


# --- cloud: key delivery and the data volume ----------------------------------------------------
def cloud_client(ud: UserData, service: str) -> Any:
    """A boto3 client for the cloud in user-data; credentials come from the instance role via IMDS."""
    import boto3
    from botocore.config import Config
    os.environ.setdefault("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3")
    os.environ.setdefault("AWS_METADATA_SERVICE_TIMEOUT", "2")
    return boto3.session.Session().client(
        service, region_name=ud.region, endpoint_url=ud.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5,
                      read_timeout=30))


@dataclass(frozen=True)
class KeySecret:
    private_key_pem: bytes      # unencrypted PKCS#8 PEM, held in memory only
    passphrase: str


def fetch_key_secret(ud: UserData, deadline: float = 180) -> KeySecret:
    """The server key and its on-disk passphrase, retried while the role's access propagates."""
    from botocore.exceptions import BotoCoreError, ClientError
    # a new client each try: botocore resolves credentials once per client, and the role's may
    # not be on the metadata service yet at first boot
    answer = until("fetch the server key", lambda: cloud_client(ud, "secretsmanager").get_secret_value(
        SecretId=ud.secret_id), deadline, (ClientError, BotoCoreError))
    try:
        doc = json.loads(answer["SecretString"])
        passphrase = doc["key_passphrase"]
        key = serialization.load_pem_private_key(doc["private_key"].encode(),
                                                 passphrase.encode() if "ENCRYPTED" in
                                                 doc["private_key"] else None)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SetupError(f"secret {ud.secret_id} is not a eucadb server-key secret") from None
    if not passphrase:
        raise SetupError(f"secret {ud.secret_id} has an empty key_passphrase")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return KeySecret(pem, passphrase)


# AttachVolume answers while something it needs is not there yet: the volume or instance just made
# (eventual consistency), the role's permission still propagating, a predecessor still detaching
ATTACH_NOT_YET = frozenset({"IncorrectState", "IncorrectInstanceState", "VolumeInUse",
                            "InvalidInstanceID.NotFound", "InvalidVolume.NotFound", "UnauthorizedOperation"})
ATTACH_RESEND_AFTER = 30.0


def attach_volume(ud: UserData, instance_id: str, deadline: float = 300) -> None:
    """Attach our data volume to ourselves, waiting while a predecessor still holds it. One request,
    then polls: DescribeVolumes lags behind AttachVolume, so it is sent again only after a while."""
    from botocore.exceptions import BotoCoreError, ClientError
    ec2 = cloud_client(ud, "ec2")
    requested = [0.0]  # monotonic time of the last AttachVolume

    def attached() -> None:
        try:
            vol = ec2.describe_volumes(VolumeIds=[ud.volume_id])["Volumes"][0]
        except (ClientError, BotoCoreError) as exc:
            raise NotYet(f"describe {ud.volume_id}: {exc}") from None
        for att in vol.get("Attachments", []):
            if att.get("InstanceId") == instance_id:
                if att.get("State") == "attached":
                    return
                raise NotYet(f"attachment is {att.get('State')}")
        if vol.get("State") != "available":
            holders = [a.get("InstanceId") for a in vol.get("Attachments", [])]
            raise NotYet(f"volume is {vol.get('State')} (attached to {holders})")
        if requested[0] and time.monotonic() - requested[0] < ATTACH_RESEND_AFTER:
            raise NotYet("attach requested, not visible yet")
        try:
            ec2.attach_volume(VolumeId=ud.volume_id, InstanceId=instance_id, Device=ud.device)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ATTACH_NOT_YET:
                raise NotYet(exc.response["Error"]["Code"]) from None
            raise SetupError(f"attach {ud.volume_id}: {exc}") from None
        requested[0] = time.monotonic()
        raise NotYet("attach requested")
    log.info("attaching volume %s as %s", ud.volume_id, ud.device)
    until(f"attach {ud.volume_id}", attached, deadline)


def find_device(root: Path, ud: UserData, deadline: float = 60) -> Path:
    """The attached disk under ROOT/dev (Xen/NVMe renames included)."""
    name = ud.device.removeprefix("/dev/")
    candidates = [root / "dev" / name, root / "dev" / ("xv" + name[1:]),
                  root / "dev" / "disk" / "by-id" /
                  f"nvme-Amazon_Elastic_Block_Store_{ud.volume_id.replace('-', '')}"]

    def present() -> Path:
        for path in candidates:
            if path.exists():
                return path
        raise NotYet(f"none of {[str(c) for c in candidates]} exists")
    return until("wait for the data disk", present, deadline)


def mount_data_disk(device: Path, mountpoint: Path) -> Path:
    """Real VM: fsck and mount; mkfs only a disk with no filesystem whose first MiB is all zero."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(mountpoint):
        return mountpoint
    # low-level probe (no cache); exit 2 is "nothing found" — any other failure must not read
    # as "empty disk", or a disk blkid cannot judge would be formatted
    probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(device)],
                           capture_output=True, text=True)
    if probe.returncode not in (0, 2):
        raise SetupError(f"blkid {device} exit {probe.returncode}: {probe.stderr.strip()}; cannot tell "
                         "what the disk holds, so neither mounting nor formatting it")
    fstype = probe.stdout.strip() if probe.returncode == 0 else ""
    if not fstype:
        with open(device, "rb") as disk:
            head = disk.read(1 << 20)
        if head.strip(b"\0"):
            raise ForeignVolume(f"{device} has no filesystem but is not empty; refusing to format it")
        log.info("formatting the new, empty data disk %s (ext4)", device)
        subprocess.run(["mkfs.ext4", "-q", "-L", "eucadb-data", str(device)], check=True)
    else:
        done = subprocess.run(["fsck", "-p", str(device)], capture_output=True, text=True)
        if done.returncode >= 4:
            raise SetupError(f"fsck {device} exit {done.returncode}: {done.stderr.strip()}; "
                             "not mounting and never formatting it — repair it by hand")
    subprocess.run(["mount", str(device), str(mountpoint)], check=True)
    return mountpoint


def data_mount(root: Path, ud: UserData) -> Path:
    """The data disk as a directory: a directory as-is (embedded cloud), a block device mounted."""
    device = find_device(root, ud)
    if device.is_dir():
        return device.resolve()
    if stat.S_ISBLK(device.stat().st_mode):
        return mount_data_disk(device, root / "var" / "lib" / "eucadb" / "data")
    raise SetupError(f"{device} is neither a directory nor a block device")


def configure_ntp(root: Path, server: str) -> None:
    if not server:
        return
    if root != Path("/"):
        log.info("ntp_server %s: skipped (not a VM's own root filesystem)", server)
        return
    if Path("/etc/chrony").is_dir():
        Path("/etc/chrony/sources.d").mkdir(exist_ok=True)
        Path("/etc/chrony/sources.d/eucadb.sources").write_text(f"server {server} iburst\n")
        subprocess.run(["chronyc", "reload", "sources"], capture_output=True)
        log.info("ntp: chrony uses %s", server)
    elif Path("/etc/systemd/timesyncd.conf").exists():
        Path("/etc/systemd/timesyncd.conf.d").mkdir(exist_ok=True)
        Path("/etc/systemd/timesyncd.conf.d/eucadb.conf").write_text(f"[Time]\nNTP={server}\n")
        subprocess.run(["systemctl", "try-restart", "systemd-timesyncd"], capture_output=True)
        log.info("ntp: systemd-timesyncd uses %s", server)
    else:
        log.info("ntp_server %s: skipped (no chrony or timesyncd)", server)


# --- local files and processes ------------------------------------------------------------------
@dataclass(frozen=True)
class RunAs:
    """Who runs PostgreSQL: `postgres` when we are root (real VM), else ourselves."""
    uid: int
    gid: int
    drop: bool

    @classmethod
    def detect(cls) -> "RunAs":
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            return cls(pw.pw_uid, pw.pw_gid, True)
        return cls(os.geteuid(), os.getegid(), False)

    def popen(self) -> dict:
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if self.drop else {}

    def chown(self, path: Path | int) -> None:
        if self.drop:
            (os.fchown if isinstance(path, int) else os.chown)(path, self.uid, self.gid)

    def become(self) -> None:
        if self.drop:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)


def write_file(path: Path, data: bytes | str, mode: int, owner: RunAs) -> None:
    """Atomic write (temp + rename) with the final mode and owner from the first byte."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        owner.chown(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_dir(path: Path, mode: int, owner: RunAs) -> Path:
    """`path` with `mode` and owner; missing parents become 0755 so the DB user can traverse them."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for parent in reversed(missing[1:]):
        parent.mkdir()
        os.chmod(parent, 0o755)
    path.mkdir(exist_ok=True)
    os.chmod(path, mode)
    owner.chown(path)
    return path


def pg_bindir(cluster_version: str | None = None) -> Path:
    """The binaries of the cluster's own major version when installed, else the newest installed
    PostgreSQL's (Debian layout first, then PATH) — an image with 15 and 16 keeps a 15 cluster running."""
    if cluster_version and cluster_version.isdigit():
        own = PG_LIB / cluster_version / "bin"
        if (own / "postgres").exists():
            return own
    found = sorted(PG_LIB.glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and (Path(d) / "postgres").exists():
            return Path(d)
    raise SetupError("PostgreSQL binaries not found")


def pg_major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not match:
        raise SetupError(f"cannot read the PostgreSQL version from {out!r}")
    return match.group(1)


# --- the cluster --------------------------------------------------------------------------------
def check_data_dir(data_dir: Path, deployment: str, major: str, owner: RunAs) -> Path:
    """PGDATA on the data disk: claim an empty disk, accept ours, refuse anything else untouched."""
    entries = sorted(set(os.listdir(data_dir)) - {"lost+found"})
    pgdata = data_dir / "pgdata"
    if not entries:
        log.info("data disk %s is empty: claiming it for deployment %s", data_dir, deployment)
        write_file(data_dir / MARKER, json.dumps({"eucadb": 1, "deployment": deployment,
                                                  "created": dt.datetime.now(dt.timezone.utc)
                                                  .isoformat()}), 0o644, owner)
        return pgdata
    if MARKER not in entries:
        raise ForeignVolume(f"data disk {data_dir} holds {len(entries)} entries ({', '.join(entries[:5])}"
                            f"{', …' if len(entries) > 5 else ''}) and no eucadb marker; refusing to "
                            "use it, leaving it untouched")
    try:
        marker = json.loads((data_dir / MARKER).read_text())
    except ValueError:
        raise ForeignVolume(f"{data_dir / MARKER} is not a eucadb marker; refusing") from None
    if marker.get("deployment") != deployment:
        log.info("data disk was created by deployment %s; adopting it for %s",
                 marker.get("deployment"), deployment)
    if marker.get("cluster_initialised") and not pgdata.exists():
        raise ForeignVolume(f"{data_dir} had a cluster (initialised {marker['cluster_initialised']}) but "
                            f"{pgdata} is gone; refusing to create an empty one in its place — restore "
                            "it, or clear the disk to start afresh")
    if pgdata.exists():
        version_file = pgdata / "PG_VERSION"
        version = version_file.read_text().strip() if version_file.exists() else None
        if version != major:
            raise ForeignVolume(f"{pgdata} holds a PostgreSQL {version or 'unknown'} cluster; this "
                                f"image runs {major}. Refusing (upgrade it by hand)")
    return pgdata


def mark_initialised(data_dir: Path, owner: RunAs, restored: str = "") -> None:
    """Record on the disk that it holds a cluster now, so a PGDATA that later goes missing is
    refused instead of silently replaced by an empty one (and which restore made it, if one did)."""
    marker = json.loads((data_dir / MARKER).read_text())
    marker["cluster_initialised"] = dt.datetime.now(dt.timezone.utc).isoformat()
    if restored:
        marker["restored"] = restored
    write_file(data_dir / MARKER, json.dumps(marker), 0o644, owner)


def init_cluster(bindir: Path, pgdata: Path, admin: str, password: str, owner: RunAs) -> None:
    """initdb into a side directory, then rename: a crash never leaves a half-made PGDATA."""
    staging = pgdata.with_name("pgdata.init")
    if staging.exists():
        log.info("removing an unfinished initdb from a previous boot (%s)", staging)
        subprocess.run(["rm", "-rf", "--one-file-system", str(staging)], check=True)
    make_dir(staging, 0o700, owner)
    r, w = os.pipe()
    try:
        os.write(w, password.encode() + b"\n")   # far below the pipe buffer: no deadlock
        os.close(w)
        w = -1
        owner.chown(r)                           # reopening /dev/fd/N checks the pipe's owner
        done = subprocess.run(
            [str(bindir / "initdb"), "-D", str(staging), "-U", admin, f"--pwfile=/dev/fd/{r}",
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--data-checksums",
             "--encoding=UTF8", "--locale=C"],
            pass_fds=(r,), capture_output=True, text=True, **owner.popen())
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if done.returncode != 0:
        raise SetupError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    os.rename(staging, pgdata)
    log.info("initialised a new cluster in %s (superuser %s, data checksums on)", pgdata, admin)


def restore_cluster(ud: UserData, pgdata: Path, owner: RunAs) -> None:
    """barman-cloud-restore of the restore block's backup into a side directory, armed for
    recovery (recovery.signal), then renamed into place: a crash never leaves a half-made PGDATA."""
    assert ud.restore is not None and ud.backup is not None
    staging = pgdata.with_name("pgdata.restore")
    if staging.exists():
        log.info("removing an unfinished restore from a previous boot (%s)", staging)
        subprocess.run(["rm", "-rf", "--one-file-system", str(staging)], check=True)
    make_dir(staging, 0o700, owner)
    log.info("restoring backup %s from %s (restore %s)", ud.restore.backup_id, ud.backup.url,
             ud.restore.token)
    done = subprocess.run([*barman_argv(ud, "cloud_restore"), ud.restore.backup_id, str(staging)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, **owner.popen())
    if done.returncode != 0:
        raise SetupError(f"barman-cloud-restore of {ud.restore.backup_id} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-2000:]}")
    write_file(staging / "recovery.signal", "", 0o600, owner)
    os.rename(staging, pgdata)
    log.info("backup %s restored into %s; recovery runs in the temporary server", ud.restore.backup_id,
             pgdata)


def recovery_settings(ud: UserData, pgdata: Path) -> dict[str, object]:
    """postgresql.conf for a restore's recovery (none once it has promoted: no recovery.signal)."""
    if ud.restore is None or ud.backup is None or not (pgdata / "recovery.signal").exists():
        return {}
    fetch = " ".join(shlex.quote(a) for a in barman_argv(ud, "cloud_walrestore"))
    # a numeric offset: PostgreSQL checks this setting before it knows zone abbreviations ("Z")
    when = ud.restore.target_time and re.sub(r"[Zz]$", "+00:00", ud.restore.target_time)
    target: dict[str, object] = ({"recovery_target_time": when,
                                  "recovery_target_inclusive": True}
                                 if ud.restore.target_time else {"recovery_target": "immediate"})
    return {"restore_command": f"{fetch} %f %p", **target, "recovery_target_action": "promote"}


def primary_conninfo(ud: UserData, ca_file: Path) -> str:
    """How this replica reaches its primary: TLS verify-full against eucadb's CA, as the replication
    role. No password: libpq takes it from PGPASSWORD, which only the server's environment holds."""
    r = ud.replication
    assert r is not None
    return (f"host={ud.dns_name} hostaddr={r.primary_address} port={ud.port} user={ud.roles['replication']} "
            f"dbname=replication sslmode=verify-full sslrootcert={ca_file} application_name={r.application_name} "
            "connect_timeout=5 keepalives=1 keepalives_idle=10 keepalives_interval=3 keepalives_count=3")


SEED_TIMEOUT = 3600


def seed_replica(bindir: Path, pgdata: Path, ud: UserData, password: str, ca_file: Path,
                 owner: RunAs) -> None:
    """pg_basebackup of the live primary through this member's slot, into a side directory renamed
    when complete (a crash never leaves a half-copied PGDATA); WAL streamed alongside (-X stream)."""
    r = ud.replication
    assert r is not None
    staging = pgdata.with_name("pgdata.init")
    if staging.exists():
        log.info("removing an unfinished base backup from a previous boot (%s)", staging)
        subprocess.run(["rm", "-rf", "--one-file-system", str(staging)], check=True)
    make_dir(staging, 0o700, owner)
    argv = [str(bindir / "pg_basebackup"), "-D", str(staging), "-d", primary_conninfo(ud, ca_file),
            "-S", r.slot, "-X", "stream", "-c", "fast", "-w", "--no-manifest"]
    env = {**os.environ, "PGPASSWORD": password}     # never in argv: /proc/*/cmdline is world-readable
    log.info("seeding from the primary at %s through slot %s", r.primary_address, r.slot)
    started = time.monotonic()

    def attempt() -> None:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SEED_TIMEOUT,
                              **owner.popen())
        if done.returncode != 0:
            subprocess.run(["rm", "-rf", "--one-file-system", str(staging)], check=True)
            make_dir(staging, 0o700, owner)
            raise NotYet(f"pg_basebackup failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    until("seed from the primary", attempt, 600)
    (staging / "standby.signal").touch()
    owner.chown(staging / "standby.signal")
    os.rename(staging, pgdata)
    log.info("seeded %s from %s in %.1fs", pgdata, r.primary_address, time.monotonic() - started)


def replica_settings(ud: UserData, pgdata: Path) -> dict[str, object]:
    """A hot standby, read-only, following the latest timeline (so it survives a failover)."""
    if ud.replication is None:
        return {}
    settings: dict[str, object] = {
        "hot_standby": True, "hot_standby_feedback": True, "default_transaction_read_only": True,
        "primary_conninfo": primary_conninfo(ud, pgdata / "ca.crt"),
        "primary_slot_name": ud.replication.slot, "recovery_target_timeline": "latest"}
    if ud.backup is not None:
        restore = " ".join(shlex.quote(a) for a in barman_argv(ud, "cloud_walrestore"))
        settings["restore_command"] = f"{restore} %f %p"
    return settings


def forget_repointing(pgdata: Path, owner: RunAs) -> None:
    """The leader re-points a running replica with ALTER SYSTEM; at boot, user-data is the truth
    again (its launch template names the current primary), so those overrides go."""
    auto = pgdata / "postgresql.auto.conf"
    if not auto.exists():
        return
    lines = auto.read_text().splitlines()
    kept = [line for line in lines if line.split("=")[0].strip() not in ("primary_conninfo", "primary_slot_name")]
    if kept != lines:
        write_file(auto, "\n".join(kept) + "\n", 0o600, owner)


def slot_wal_limit(data_dir: Path) -> str:
    """max_slot_wal_keep_size: a quarter of the data disk, so a slot whose replica is gone never
    fills it (the slot is invalidated, reported, and the replica re-seeded)."""
    st = os.statvfs(data_dir)
    return f"{max(64, st.f_blocks * st.f_frsize // 4 // (1024 * 1024))}MB"


def memory_settings(instance_type: str) -> dict[str, str]:
    """Conservative sizing from the instance type's memory (unknown types: 1 GiB)."""
    mib = INSTANCE_MEMORY_MIB.get(instance_type, DEFAULT_MEMORY_MIB)
    return {"shared_buffers": f"{max(32, mib // 4)}MB",
            "effective_cache_size": f"{max(64, mib * 3 // 4)}MB",
            "work_mem": f"{min(64, max(4, mib // 256))}MB",
            "maintenance_work_mem": f"{min(1024, max(64, mib // 16))}MB"}


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def write_config(pgdata: Path, settings: Mapping[str, object], owner: RunAs) -> None:
    """Our settings in eucadb.conf, included last from postgresql.conf (added once)."""
    body = "# written by eucadb setup_db.py at every boot; edits are overwritten\n" + "".join(
        f"{k} = {_conf_value(v)}\n" for k, v in settings.items())
    write_file(pgdata / "eucadb.conf", body, 0o600, owner)
    main_conf = pgdata / "postgresql.conf"
    text = main_conf.read_text()
    include = "include_if_exists = 'eucadb.conf'"
    if include not in text.splitlines():
        write_file(main_conf, text.rstrip("\n") + f"\n\n{include}\n", 0o600, owner)


def hba_lines(ud: UserData) -> list[str]:
    """TLS + SCRAM only, per role to its own database, from allowed_cidrs only; nothing else."""
    r, d = ud.roles, ud.databases
    # local: only the OS user that runs PostgreSQL, as the admin (pg_ident.conf), for Barman
    lines = ["# written by eucadb setup_db.py at every boot; edits are overwritten",
             f"local all {r['admin']} peer map={LOCAL_MAP}"]
    for cidr in ud.allowed_cidrs:
        lines += [f"hostssl all {r['admin']} {cidr} scram-sha-256",
                  *(f"hostssl {d[k]} {r[k]} {cidr} scram-sha-256" for k in WRITER_KEYS),
                  f"hostssl replication {r['replication']} {cidr} scram-sha-256"]
    return lines


LOCAL_MAP = "eucadb_local"


def ident_lines(ud: UserData, owner: RunAs) -> list[str]:
    """The peer map of hba_lines: PostgreSQL's own OS user (Barman, run by the server) and root
    (who owns PGDATA anyway: a root shell may use psql without a password) log in as the admin."""
    users = dict.fromkeys((pwd.getpwuid(owner.uid).pw_name, "root"))
    return ["# written by eucadb setup_db.py at every boot; edits are overwritten",
            *(f"{LOCAL_MAP} {user} {ud.roles['admin']}" for user in users)]


def barman_argv(ud: UserData, client: str, *options: str) -> list[str]:
    """A Barman Cloud client (`barman.clients.<client>`, run by this interpreter: the image's
    python3 has Debian's python3-barman, the embedded runtime a pip barman) for our bucket."""
    assert ud.backup is not None
    return [sys.executable, "-m", f"barman.clients.{client}", "--cloud-provider", "aws-s3",
            *(["--endpoint-url", ud.endpoint_url, "--addressing-style", "path"]
              if ud.endpoint_url else []), *options,
            ud.backup.url, BARMAN_SERVER]


def backup_settings(ud: UserData, root: Path) -> dict[str, object]:
    """postgresql.conf for continuous archiving (none without `backup` in user-data)."""
    if ud.backup is None:
        return {"archive_mode": False}
    archive = " ".join(shlex.quote(a) for a in barman_argv(ud, "cloud_walarchive", "--gzip"))
    here = Path(__file__).resolve()
    backup = " ".join(shlex.quote(str(p)) for p in (sys.executable, here, "--root", root, "backup"))
    return {"archive_mode": True, "archive_command": f"{archive} %p",
            "archive_timeout": ud.backup.archive_timeout, "eucadb.backup_command": backup}


def write_tls(pgdata: Path, ud: UserData, key_pem: bytes, passphrase: str, owner: RunAs) -> None:
    """Certificates in the clear, the key only encrypted (PKCS#8 with the delivered passphrase)."""
    key = serialization.load_pem_private_key(key_pem, None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(passphrase.encode()))
    write_file(pgdata / "server.key", encrypted, 0o600, owner)
    write_file(pgdata / "server.crt", ud.server_cert, 0o644, owner)
    write_file(pgdata / "ca.crt", ud.ca_cert, 0o644, owner)


def run_init_script(root: Path, script: str) -> None:
    """The operator's init_script, from a 0700 file under ROOT/run that is deleted afterwards.
    A failing script is logged, not fatal: the database matters more than the extra."""
    if not script.strip():
        return
    fd, path = tempfile.mkstemp(dir=root / "run", prefix="eucadb-init-")
    try:
        os.fchmod(fd, 0o700)
        with os.fdopen(fd, "w") as f:
            f.write(script)
        # the interpreter runs the file (never the file itself): /run is mounted noexec on a VM
        shebang = shlex.split(script.splitlines()[0][2:]) if script.startswith("#!") else []
        argv = [*(shebang or ["/bin/sh"]), path]
        log.info("running init_script with %s", argv[0])
        done = subprocess.run(argv, cwd=root, timeout=INIT_SCRIPT_TIMEOUT, stdin=subprocess.DEVNULL)
        log.info("init_script finished with exit code %d", done.returncode)
    except subprocess.TimeoutExpired:
        log.warning("init_script still running after %ds: killed", INIT_SCRIPT_TIMEOUT)
    except (OSError, ValueError) as exc:  # no such interpreter, an unparsable #! line
        log.warning("init_script could not be run: %s", exc)
    finally:
        Path(path).unlink(missing_ok=True)


class TemporaryServer:
    """Socket-only PostgreSQL for the SQL phase, reached by peer auth (no password needed, so a new
    admin password in user-data can always be applied)."""

    def __init__(self, bindir: Path, pgdata: Path, socket_dir: Path, port: int, admin: str,
                 owner: RunAs, deadline: float = 120):
        self.bindir, self.pgdata, self.socket_dir, self.port = bindir, pgdata, socket_dir, port
        self.deadline = deadline
        self.admin, self.owner, self.proc = admin, owner, None
        self.hba, self.ident = socket_dir / "setup_hba.conf", socket_dir / "setup_ident.conf"

    def __enter__(self) -> "TemporaryServer":
        me = pwd.getpwuid(os.geteuid()).pw_name
        write_file(self.hba, f"local all {self.admin} peer map=eucadb_setup\n", 0o600, self.owner)
        write_file(self.ident, f"eucadb_setup {me} {self.admin}\n", 0o600, self.owner)
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.pgdata), "-c", "listen_addresses=",
             "-c", f"hba_file={self.hba}", "-c", f"ident_file={self.ident}"],
            stdin=subprocess.DEVNULL, **self.owner.popen())

        def ready() -> None:
            if self.proc.poll() is not None:
                raise SetupError(f"PostgreSQL exited with {self.proc.returncode} during setup "
                                 "(see ROOT/var/log/postgresql)")
            try:
                self.connect("postgres").close()
            except psycopg2.OperationalError as exc:
                raise NotYet(str(exc).strip()) from None
        try:
            until("start the temporary server", ready, self.deadline)
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_promoted(self) -> None:
        """A restore's recovery runs here: wait until it reached its target and promoted (a
        target it cannot reach makes PostgreSQL exit, which `ready`'s poll reports)."""
        def promoted() -> None:
            if self.proc.poll() is not None:
                raise SetupError(f"PostgreSQL exited with {self.proc.returncode} during recovery "
                                 "(see ROOT/var/log/postgresql)")
            with contextlib.closing(self.connect("postgres")) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                if cur.fetchone()[0]:
                    raise NotYet("still recovering")
        until("recover and promote", promoted, self.deadline, retry_on=(NotYet, psycopg2.OperationalError))
        log.info("recovery reached its target and the server promoted")

    def connect(self, dbname: str) -> Any:
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=self.admin,
                                dbname=dbname, connect_timeout=5, application_name="eucadb-setup")
        conn.autocommit = True
        return conn

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)        # fast shutdown
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.hba.unlink(missing_ok=True)
        self.ident.unlink(missing_ok=True)


def apply_sql(server: TemporaryServer, ud: UserData, passwords: Mapping[str, str]) -> None:
    """Roles, passwords (as SCRAM verifiers), databases and grants — idempotent, every boot."""
    roles, dbs, admin = ud.roles, ud.databases, sql.Identifier(ud.roles["admin"])
    with contextlib.closing(server.connect("postgres")) as conn, conn.cursor() as cur:
        for key in ROLE_KEYS:
            name = roles[key]
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
                log.info("created role %s", name)
            attrs = ("SUPERUSER" if key == "admin" else
                     "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                     + ("REPLICATION" if key == "replication" else "NOREPLICATION"))
            verifier = psycopg2.extensions.encrypt_password(passwords[key], name, conn,
                                                            "scram-sha-256")
            cur.execute(sql.SQL("ALTER ROLE {} WITH LOGIN " + attrs + " PASSWORD %s")
                        .format(sql.Identifier(name)), (verifier,))
        log.info("passwords applied for %s", ", ".join(roles[k] for k in ROLE_KEYS))
        for key in WRITER_KEYS:
            db, writer = sql.Identifier(dbs[key]), sql.Identifier(roles[key])
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbs[key],))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, admin))
                log.info("created database %s", dbs[key])
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, writer))
    for key in WRITER_KEYS:
        writer = sql.Identifier(roles[key])
        with contextlib.closing(server.connect(dbs[key])) as conn, conn.cursor() as cur:
            for stmt in (
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                "GRANT USAGE ON SCHEMA public TO {w}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {a} IN SCHEMA public"
                " GRANT SELECT, INSERT ON TABLES TO {w}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {a} IN SCHEMA public GRANT USAGE ON SEQUENCES TO {w}",
                "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {w}",
                "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
                " ON ALL TABLES IN SCHEMA public FROM {w}",
                "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {w}",
            ):
                cur.execute(sql.SQL(stmt).format(a=admin, w=writer))
            # CloudWatch's rollup tiers are written by the maintenance (admin) role only (rollups.py)
            cur.execute("SELECT quote_ident(relname) FROM pg_class WHERE relkind IN ('r', 'p') "
                        "AND relname LIKE 'metric\\_rollup\\_%'")
            for (table,) in cur.fetchall():
                cur.execute(sql.SQL("REVOKE INSERT ON " + table + " FROM {}").format(writer))
        log.info("grants in %s: %s may SELECT and INSERT only", dbs[key], roles[key])


@dataclass(frozen=True)
class DbSetup:
    """Everything the database part needs — callable without a cloud (tests use it directly)."""
    root: Path
    data_dir: Path                  # the mounted data disk
    private_ip: str
    user_data: UserData
    passwords: Mapping[str, str]    # role key -> password (memory only)
    server_key_pem: bytes           # unencrypted, memory only
    key_passphrase: str
    passphrase_command: str         # PostgreSQL's ssl_passphrase_command


def setup_database(s: DbSetup, owner: RunAs | None = None) -> list[str]:
    """Prepare the cluster and return the argv of the foreground `postgres` to exec."""
    owner = owner or RunAs.detect()
    version_file = s.data_dir / "pgdata" / "PG_VERSION"
    ud = s.user_data
    bindir = pg_bindir(version_file.read_text().strip() if version_file.exists() else None)
    major = pg_major(bindir)
    pgdata = check_data_dir(s.data_dir, ud.deployment, major, owner)
    socket_dir = make_dir(s.root / "run" / "eucadb", 0o700, owner)
    log_dir = make_dir(s.root / "var" / "log" / "postgresql", 0o750, owner)
    if len(str(socket_dir / f".s.PGSQL.{ud.port}")) > 107:
        raise SetupError(f"socket path under {socket_dir} is too long for a unix socket")
    reused = (pgdata / "PG_VERSION").exists()
    # a replica is seeded from its primary even when its template carries a restore block
    restoring = ud.restore is not None and ud.backup is not None and not reused and ud.replication is None
    if restoring:
        restore_cluster(ud, pgdata, owner)
        mark_initialised(s.data_dir, owner, restored=ud.restore.token)
    elif not reused and ud.replication is not None:
        ca_file = socket_dir / "seed-ca.crt"
        write_file(ca_file, ud.ca_cert, 0o644, owner)
        seed_replica(bindir, pgdata, ud, s.passwords["replication"], ca_file, owner)
        mark_initialised(s.data_dir, owner)
    elif not reused:
        init_cluster(bindir, pgdata, ud.roles["admin"], s.passwords["admin"], owner)
        mark_initialised(s.data_dir, owner)
    else:
        log.info("reusing the existing cluster in %s", pgdata)
        if "cluster_initialised" not in json.loads((s.data_dir / MARKER).read_text()):
            mark_initialised(s.data_dir, owner)  # a disk from before the marker recorded it
    write_tls(pgdata, ud, s.server_key_pem, s.key_passphrase, owner)
    settings: dict[str, object] = {
        "listen_addresses": s.private_ip, "port": ud.port,
        "unix_socket_directories": str(socket_dir), "unix_socket_permissions": "0700",
        "ssl": True, "ssl_cert_file": "server.crt", "ssl_key_file": "server.key",
        "ssl_min_protocol_version": "TLSv1.2", "ssl_passphrase_command": s.passphrase_command,
        "ssl_passphrase_command_supports_reload": True, "password_encryption": "scram-sha-256",
        "max_connections": 100, **memory_settings(ud.instance_type),
        "wal_level": "replica", "max_wal_senders": 10, "max_replication_slots": 10,
        "logging_collector": True, "log_directory": str(log_dir),
        "log_filename": "postgresql-%a.log", "log_truncate_on_rotation": True,
        "log_rotation_age": "1d", "log_connections": True, "log_disconnections": True,
        "log_line_prefix": "%m [%p] %q%u@%d ", "log_statement": "none",
        **backup_settings(ud, s.root), "max_slot_wal_keep_size": slot_wal_limit(s.data_dir),
        **replica_settings(ud, pgdata),
        # what this boot found on the volume: eucadb's status reads it (SHOW), so an operator sees a
        # deployment resumed from a kept volume rather than guessing from timestamps
        "eucadb.cluster": "restored" if restoring else "reused" if reused else "initialised",
        "eucadb.restore": json.loads((s.data_dir / MARKER).read_text()).get("restored", ""),
        **recovery_settings(ud, pgdata),
    }
    write_config(pgdata, settings, owner)
    write_file(pgdata / "pg_hba.conf", "\n".join(hba_lines(ud)) + "\n", 0o600, owner)
    write_file(pgdata / "pg_ident.conf", "\n".join(ident_lines(ud, owner)) + "\n", 0o600, owner)
    log.info("config: listen %s:%d, TLS (%s), hostssl+scram from %s", s.private_ip, ud.port,
             ud.dns_name, ", ".join(ud.allowed_cidrs))
    run_init_script(s.root, ud.init_script)
    if ud.replication is not None:
        # a standby is read-only: roles, passwords and grants arrive from the primary's WAL
        forget_repointing(pgdata, owner)
        return [str(bindir / "postgres"), "-D", str(pgdata)]
    recovering = bool(recovery_settings(ud, pgdata))
    with TemporaryServer(bindir, pgdata, socket_dir, ud.port, ud.roles["admin"], owner,
                         RESTORE_DEADLINE if recovering else 120) as server:
        if recovering:
            server.wait_promoted()
        apply_sql(server, ud, s.passwords)
    return [str(bindir / "postgres"), "-D", str(pgdata)]


# --- entry points -------------------------------------------------------------------------------
def passphrase_command(root: Path) -> str:
    here = Path(__file__).resolve()
    return " ".join(shlex.quote(str(p)) for p in (sys.executable, here, "--root", root, "passphrase"))


def print_passphrase() -> int:
    """ssl_passphrase_command: print the key passphrase, fetched through the instance role."""
    raw = Imds().get("latest/user-data")
    if not raw:
        raise SetupError("this instance has no user-data")
    ud = parse_user_data(raw)
    sys.stdout.write(fetch_key_secret(ud, deadline=60).passphrase + "\n")
    return 0


def run_backup(root: Path, name: str) -> int:
    """`backup NAME`: barman-cloud-backup of the running server (as PostgreSQL's OS user, from
    COPY TO PROGRAM), through the local socket; its exit code is COPY's verdict."""
    if not BACKUP_NAME.fullmatch(name or ""):
        raise SetupError(f"backup name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
    raw = Imds().get("latest/user-data")
    ud = parse_user_data(raw or b"")
    if ud.backup is None:
        raise SetupError("this instance has no backup bucket in its user-data")
    argv = barman_argv(ud, "cloud_backup", "--gzip", "--immediate-checkpoint", "--name", name,
                       "--host", str(root / "run" / "eucadb"), "--port", str(ud.port),
                       "--user", ud.roles["admin"], "--dbname", "postgres")
    log.info("base backup %s to %s", name, ud.backup.url)
    return subprocess.run(argv, stdin=subprocess.DEVNULL).returncode


def boot(root: Path) -> list[str]:
    facts = instance_facts(Imds())
    ud = parse_user_data(facts.user_data)
    log.info("instance %s in %s at %s: deployment %s", facts.instance_id, facts.availability_zone,
             facts.private_ip, ud.deployment)
    key = fetch_key_secret(ud)
    passwords = parse_credentials(unseal(ud.credentials, key.private_key_pem, ud.deployment), ud)
    log.info("credentials unsealed for %d roles", len(passwords))
    attach_volume(ud, facts.instance_id)
    data_dir = data_mount(root, ud)
    log.info("data disk at %s", data_dir)
    os.environ["AWS_DEFAULT_REGION"] = ud.region  # for the Barman clients PostgreSQL runs
    if ud.replication is not None:
        # the walreceiver's libpq reads it: the server's own environment, never a file or argv
        os.environ["PGPASSWORD"] = passwords["replication"]
    configure_ntp(root, ud.ntp_server)
    return setup_database(DbSetup(root, data_dir, facts.private_ip, ud, passwords,
                                  key.private_key_pem, key.passphrase, passphrase_command(root)))


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="the instance's root filesystem")
    parser.add_argument("command", nargs="?", choices=("boot", "passphrase", "backup"), default="boot")
    parser.add_argument("name", nargs="?", default="", help="backup: the backup's name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s setup_db[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    os.umask(0o077)
    root = args.root.resolve()
    try:
        if args.command == "passphrase":
            return print_passphrase()
        if args.command == "backup":
            return run_backup(root, args.name)
        postgres = boot(root)
    except (SetupError, psycopg2.Error, OSError, subprocess.SubprocessError, BotoCoreError,
            ClientError) as exc:
        log.error("%s failed: %s", args.command, str(exc).strip())
        return 2
    log.info("setup done; exec %s", " ".join(postgres))
    logging.shutdown()
    RunAs.detect().become()
    os.execv(postgres[0], postgres)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
