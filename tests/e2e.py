"""Helpers for end-to-end tests: run the real `eucadb` command against an embedded cloud in a
temporary home whose VPC is a random loopback /16 (concurrent test runs never share addresses)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import boto3

EUCADB = str(Path(sys.executable).parent / "eucadb")


def random_vpc() -> str:
    return f"127.{random.randint(81, 250)}.0.0/16"


@dataclass
class Env:
    home: Path
    data_dir: Path
    vpc: str = field(default_factory=random_vpc)
    extra: dict = field(default_factory=dict)

    def environ(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
        env.update({"EUCADB_HOME": str(self.home), "EUCADB_CLOUD_DATA_DIR": str(self.data_dir),
                    "EUCADB_CLOUD_VPC_CIDR": self.vpc, **self.extra, **more})
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 600, **env: str):
        result = subprocess.run([EUCADB, *args], capture_output=True, text=True, timeout=timeout,
                                env=self.environ(**env))
        if check and result.returncode != 0:
            raise AssertionError(f"eucadb {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def client(self, service: str):
        from eucadb.config import load
        cfg = load(env=self.environ())
        return boto3.client(service, endpoint_url=cfg["cloud.endpoint_url"], region_name=cfg["cloud.region"],
                            aws_access_key_id=cfg["cloud.access_key_id"] or "testing",
                            aws_secret_access_key=cfg["cloud.secret_access_key"] or "testing")

    def app(self):
        from eucadb.app import App
        from eucadb.config import load
        return App(load(env=self.environ()))


def make_env(tmp: Path) -> Env:
    """Directories the instance user (`postgres` when root) can traverse."""
    tmp.mkdir(parents=True, exist_ok=True)
    for p in (tmp, *tmp.parents):
        if str(p).startswith("/tmp/") and os.geteuid() == 0:
            os.chmod(p, os.stat(p).st_mode | 0o011)
    home, data = tmp / "home", tmp / "data"
    data.mkdir(mode=0o755, exist_ok=True)
    return Env(home=home, data_dir=data)
