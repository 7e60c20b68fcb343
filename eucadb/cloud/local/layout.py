"""Where the embedded cloud keeps things, and who owns them.

Two roots: `cloud_dir` (control plane: pid files, logs; root-only is fine) and `data_dir` (instance
root filesystems, volumes, snapshots, images; must be traversable by the instance user because
realized instances run as that user when eucadb runs as root). Data is keyed by the ids moto returns.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from eucadb.config import Config
from eucadb.errors import UserError


PRIVATE = ("snapshots", "state")  # data-plane directories the instance user must not read


@dataclass(frozen=True)
class InstanceUser:
    """The unprivileged identity realized instances run as (None fields: run as ourselves)."""
    name: str | None
    uid: int | None
    gid: int | None

    @classmethod
    def resolve(cls, name: str) -> "InstanceUser":
        if os.geteuid() != 0:
            return cls(None, None, None)
        pw = pwd.getpwnam(name)
        return cls(name, pw.pw_uid, pw.pw_gid)

    def chown(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def popen_kwargs(self) -> dict:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True)
class Layout:
    cloud_dir: Path
    data_dir: Path
    user: InstanceUser
    runtime_cache: Path | None = None

    @classmethod
    def from_config(cls, config: Config) -> "Layout":
        cache = config["cloud.runtime_dir"]
        return cls(config.cloud_dir, config.cloud_data_dir,
                   InstanceUser.resolve(config["cloud.instance_user"]), Path(cache) if cache else None)

    # control plane ---------------------------------------------------------------------------
    @property
    def api_pidfile(self) -> Path:
        return self.cloud_dir / "api.pid"

    @property
    def api_portfile(self) -> Path:
        """The API's last port, kept across `down`: clients configured before a restart still reach it."""
        return self.cloud_dir / "api.port"

    @property
    def state_key_file(self) -> Path:
        """The key (0600) the control-plane state is encrypted with: here, not beside the state in
        cloud.data_dir, so a copy of the data directory reveals no secret (state.py)."""
        return self.cloud_dir / "state.key"

    @property
    def credentials_file(self) -> Path:
        """The root user's access key (0600), written by the API at start, read by `cloud up`."""
        return self.cloud_dir / "root-credentials.json"

    @property
    def service_credentials_file(self) -> Path:
        """The EC2 service's own key (0600): the realizer vends instance-profile credentials with it,
        as `ec2.amazonaws.com`, the principal instance roles trust (written by the API at start)."""
        return self.cloud_dir / "ec2-service-credentials.json"

    def root_credentials(self) -> dict[str, str] | None:
        """The root key as eucadb's config names it; None while the API has not written it."""
        return self._credentials(self.credentials_file)

    def service_credentials(self) -> dict[str, str] | None:
        """The EC2 service's key, config-named as root_credentials()."""
        return self._credentials(self.service_credentials_file)

    @staticmethod
    def _credentials(path: Path) -> dict[str, str] | None:
        try:
            data = json.loads(path.read_text())
            return {"cloud.access_key_id": str(data["access_key_id"]),
                    "cloud.secret_access_key": str(data["secret_access_key"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def realizer_pidfile(self) -> Path:
        return self.cloud_dir / "realizer.pid"

    def instance_pidfile(self, instance_id: str) -> Path:
        """Outside the instance's root on purpose: the instance user must not be able to forge it."""
        return self.cloud_dir / "instances" / f"{instance_id}.json"

    def cgroup_name(self, instance_id: str) -> str:
        """Relative cgroup path of an instance, scoped by this cloud (several clouds may share a host)."""
        import hashlib
        scope = hashlib.sha256(str(self.cloud_dir.resolve()).encode()).hexdigest()[:10]
        return f"eucadb-{scope}/{instance_id}"

    def log(self, name: str) -> Path:
        return self.cloud_dir / "logs" / f"{name}.log"

    # data plane ------------------------------------------------------------------------------
    def instance_root(self, instance_id: str) -> Path:
        return self.data_dir / "instances" / instance_id

    def volume_dir(self, volume_id: str) -> Path:
        return self.data_dir / "volumes" / volume_id

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.data_dir / "snapshots" / snapshot_id

    def image_dir(self, image_id: str) -> Path:
        return self.data_dir / "images" / image_id

    @property
    def s3_dir(self) -> Path:
        """The embedded S3's buckets (s3_store.py): kept by `down`, removed only by `destroy`."""
        return self.data_dir / "s3"

    @property
    def state_dir(self) -> Path:
        """The control plane's saved state (state.py): secrets included, so root-only."""
        return self.data_dir / "state"

    @property
    def runtimes_dir(self) -> Path:
        return self.runtime_cache or self.data_dir / "runtimes"

    def ensure(self) -> None:
        """Create both roots; every data-plane ancestor must be traversable (0755) by the instance user."""
        for sub in ("instances", "logs"):
            (self.cloud_dir / sub).mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o755)
        for path in (self.data_dir / "instances", self.data_dir / "volumes", self.data_dir / "snapshots",
                     self.data_dir / "images", self.state_dir, self.runtimes_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o700 if path.name in PRIVATE else 0o755)

    def check_traversable(self) -> None:
        """Fail early, naming the directory, when the instance user could not reach its instances
        (e.g. a data dir under /root, mode 700): otherwise every boot would fail obscurely."""
        if self.user.uid is None:
            return
        groups = {self.user.gid} | {g.gr_gid for g in grp.getgrall() if self.user.name in g.gr_mem}
        for path in (self.data_dir, *self.data_dir.parents):
            st = path.stat()
            bit = (stat.S_IXUSR if st.st_uid == self.user.uid else
                   stat.S_IXGRP if st.st_gid in groups else stat.S_IXOTH)
            if not st.st_mode & bit:
                raise UserError(f"{path} is not traversable by {self.user.name}, the user instances run "
                                f"as: set cloud.data_dir to a directory it can reach (e.g. under /var/lib)")

    def make_owned_dir(self, path: Path, mode: int = 0o755) -> Path:
        """A directory the instance user owns (an instance's root, a volume)."""
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        self.user.chown(path)
        return path

    def remove_all(self) -> list[Path]:
        """`eucadb destroy`: the data directory (state, volumes, snapshots, images, instance roots,
        runtimes) and the control-plane directory. Returns what existed and was removed."""
        removed = []
        for path in (self.data_dir, self.cloud_dir):  # the same directory when not root
            if path.exists():
                shutil.rmtree(path)
                removed.append(path)
        return removed
