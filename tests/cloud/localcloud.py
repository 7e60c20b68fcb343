"""Test helpers: a whole embedded cloud in a temporary home, on a /16 no concurrent run uses.

Several developers run suites on this machine at once: each cloud takes a random 127.X.0.0/16
(X in 81..250) whose lock file it holds (flock, released even if the run dies) and on which
nothing is listening, so instance IPs and metadata ports never collide.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import boto3
import yaml

from e2e import _listening_octets, allocate_vpc
from eucadb.cloud.local.layout import Layout
from eucadb.config import KEYS_BY_NAME
from eucadb.cloud.local.procs import start_time

REPO = Path(__file__).resolve().parents[2]
BOOT_PROGRAMS = Path(__file__).parent / "boot_programs"
RUNTIME_CACHE = Path("/tmp/eucadb-test-runtimes")
T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `fn` until it returns something truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_for_absent(fn: Callable[[], T], seconds: float) -> T | None:
    """fn()'s first truthy value within `seconds`, else None (for "never happens" checks)."""
    try:
        return wait_for(fn, seconds, "absent")
    except AssertionError:
        return None


def alive(record: dict) -> bool:
    """Whether the process of a pid record still runs (same pid and start time)."""
    return start_time(record["pid"]) == record["start_time"]


def connect_answer(ip: str, port: int = 5432) -> str | None:
    """What a probe instance answers on ip:port, None if nothing listens."""
    try:
        with socket.create_connection((ip, port), timeout=1) as s:
            return s.recv(100).decode().strip()
    except OSError:
        return None


class LocalCloud:
    def __init__(self) -> None:
        self.vpc_cidr, self._lock = allocate_vpc()
        self.prefix = self.vpc_cidr.rsplit(".", 2)[0]  # "127.X"
        self.base = Path(tempfile.mkdtemp(prefix="eucadb-cloudtest-"))
        os.chmod(self.base, 0o755)
        self.home = self.base / "home"
        self.data_dir = self.base / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
        self.env.update({
            "EUCADB_HOME": str(self.home), "EUCADB_CLOUD_DATA_DIR": str(self.data_dir),
            "EUCADB_CLOUD_VPC_CIDR": self.vpc_cidr, "EUCADB_CLOUD_POLL_INTERVAL": "0.2",
            "EUCADB_CLOUD_STOP_TIMEOUT": "5",
            # content-keyed and built atomically: safe to share between clouds and concurrent runs
            "EUCADB_CLOUD_RUNTIME_DIR": str(RUNTIME_CACHE)})
        self.endpoint = ""

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "eucadb.cli", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"eucadb {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def up(self) -> "LocalCloud":
        self.cli("cloud", "up")
        self.endpoint = self.status()["endpoint"]
        return self

    def status(self) -> dict:
        return json.loads(self.cli("cloud", "status", "--output", "json").stdout)

    def install_image(self, program: str) -> str:
        return self.cli("image", "install", "--local", "--boot-program",
                        str(BOOT_PROGRAMS / program)).stdout.strip()

    instance_user = KEYS_BY_NAME["cloud.instance_user"].default  # who instances run as (we are root)

    @property
    def credentials(self) -> dict[str, str]:
        """The root key `cloud up` issued (boto3's keyword names)."""
        cloud = yaml.safe_load((self.home / "eucadb.yaml").read_text())["cloud"]
        return {"aws_access_key_id": cloud["access_key_id"], "aws_secret_access_key": cloud["secret_access_key"]}

    @property
    def ec2_service(self) -> dict[str, str]:
        """The EC2 service principal's key (what the realizer vends instance-role credentials with)."""
        held = json.loads((self.home / "cloud" / "ec2-service-credentials.json").read_text())
        return {"aws_access_key_id": held["access_key_id"], "aws_secret_access_key": held["secret_access_key"]}

    def role_session(self, role_arn: str, name: str = "i-test") -> dict[str, str]:
        """An assumed-role session of an instance role, as EC2 gets it for an instance (roles trust
        ec2.amazonaws.com, not the root user)."""
        creds = self.client("sts", **self.ec2_service).assume_role(RoleArn=role_arn, RoleSessionName=name)
        creds = creds["Credentials"]
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}

    def client(self, service: str, config: Any = None, **credentials: str) -> Any:
        """A client with the issued root key, or with `credentials` when given."""
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", config=config,
                            **(credentials or self.credentials))

    def pid_record(self, instance_id: str) -> dict | None:
        path = self.home / "cloud" / "instances" / f"{instance_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def instance_root(self, instance_id: str) -> Path:
        return self.data_dir / "instances" / instance_id

    def report(self, instance_id: str) -> dict | None:
        path = self.instance_root(instance_id) / "var" / "lib" / "probe" / "report.json"
        return json.loads(path.read_text()) if path.exists() else None

    def disk(self, instance_id: str) -> list[str]:
        """What the probe last saw on its data disk."""
        return (self.report(instance_id) or {}).get("disk") or []

    def leftovers(self) -> list[str]:
        """Processes of this cloud still alive: daemons (by EUCADB_HOME) or instances (by marker)."""
        markers = (f"EUCADB_HOME={self.home}".encode(),
                   f"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{self.prefix}.".encode())
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry.name}/environ").read_bytes()
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            try:  # PostgreSQL overwrites its environment, but its cwd is its data directory
                cwd = os.readlink(f"/proc/{entry.name}/cwd")
            except OSError:
                cwd = ""
            if any(m in environ.split(b"\0") or (m.endswith(b".") and m in environ) for m in markers) \
                    or cwd.startswith(str(self.base)):
                found.append(f"{entry.name}: {cmdline.decode(errors='replace')[:120]}")
        return found

    def leftover_cgroups(self) -> list[str]:
        """cgroup directories of this cloud's instances that still exist."""
        scope = Layout(self.home / "cloud", self.data_dir, None).cgroup_name("x").split("/")[0]
        return [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/{scope}")]

    def listening(self) -> list[int]:
        octet = int(self.prefix.split(".")[1])
        return [octet] if octet in _listening_octets() else []

    def down(self) -> None:
        self.cli("cloud", "down")

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        self._lock.close()
