"""The embedded cloud's control plane on disk: moto's backends, pickled, after every change.

Why a pickle of moto's own objects rather than an export/replay of API calls: replaying cannot give
back the same ids (moto draws them at random) and would need a recorder per action; the objects
*are* the state, ids, states, tags and cross references included, and moto 5 backends pickle as they
are. What needs care is handled here, in one place:

- references between backends (autoscaling → ec2, ebs → ec2, …) are pickled as *names*
  (module, BackendDict, account, region) and resolved at load: a persisted backend to the object
  this file restores, any other (elb, elbv2, …) to the live backend of the loading process;
- moto's ~1,300 stock AMIs and their snapshots (95 % of the bytes) are left out and regenerated at
  load, as moto itself does at start; the user's images (owner alias not `amazon`) keep their ids;
- types that do not survive a process (locks) are recreated empty (TRANSIENT);
- S3 is not persisted here (it has its own on-disk store).

File: one header line (format, moto and Python versions, payload digest, time written), then the
pickle, encrypted (format 2): AES-256-GCM with the key file `<cloud dir>/state.key` (0600, under
$EUCADB_HOME), because the pickle holds secrets in plaintext (Secrets Manager values, IAM secret
keys, session credentials) and lives elsewhere, under `cloud.data_dir` (with the volumes and S3
data that get copied and backed up): a copy of the data directory alone reveals none of them. A
format-1 (plain) file of an older install is loaded and written encrypted at the next change. Written atomically and durably (temp file in the same directory, fsync, rename, fsync of the
directory). A file this code cannot trust — another moto or Python, a bad digest, a payload that
does not load — is an error naming it, and the file is left exactly as it is.
"""
from __future__ import annotations

import copyreg
import datetime as dt
import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import pickle
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from eucadb.errors import CloudError, EucadbError
from eucadb.store.secretbox import SecretBox

FORMAT = 2  # the pickle encrypted; 1: the pickle as it is (read, never written)
READABLE_FORMATS = (1, 2)
PURPOSE = "embedded cloud control-plane state"  # the AAD: this key's ciphertext for no other use
MAGIC = b"EUCADB-CONTROL-PLANE "
FILE_NAME = "control-plane.pickle"
SERVICES = ("ec2", "autoscaling", "iam", "sts", "secretsmanager", "ebs")
STOCK_ALIAS = "amazon"  # moto marks the AMIs it loads at start with this owner alias


class StateError(CloudError):
    """The state file exists but cannot be used; it is kept as it is."""


def state_path(data_dir: Path) -> Path:
    return data_dir / "state" / FILE_NAME


def _python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Header:
    format: int
    moto: str
    python: str
    sha256: str
    size: int
    written: str

    @classmethod
    def current(cls, payload: bytes) -> "Header":
        return cls(FORMAT, importlib.metadata.version("moto"), _python(), hashlib.sha256(payload).hexdigest(),
                   len(payload), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def incompatibility(self) -> str | None:
        """Why this process cannot load a file with this header (None: it can)."""
        if self.format not in READABLE_FORMATS:
            return f"written with format {self.format}, this eucadb reads formats {READABLE_FORMATS}"
        wanted = {"moto": importlib.metadata.version("moto"), "python": _python()}
        for key, value in wanted.items():
            if getattr(self, key) != value:
                return f"written with {key} {getattr(self, key)}, this eucadb runs {key} {value}"
        return None


def read_header(path: Path) -> tuple[Header, int]:
    """The header and the payload offset; StateError if the file is not one of ours."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(4096)
    except OSError as exc:
        raise StateError(f"{path}: cannot read the control-plane state: {exc.strerror}") from None
    if not line.startswith(MAGIC) or not line.endswith(b"\n"):
        raise _unusable(path, "no control-plane state header")
    try:
        header = Header(**json.loads(line[len(MAGIC):]))
    except (ValueError, TypeError):
        raise _unusable(path, "its header is damaged") from None
    return header, len(line)


def _unusable(path: Path, why: str) -> StateError:
    return StateError(f"{path}: the embedded cloud's control-plane state is unusable ({why}); it is kept "
                      f"as it is: restore it, or move it away to start an empty cloud")


def verify(path: Path) -> tuple[Header, bytes]:
    """Header and payload of a file this process can load (versions match, digest intact)."""
    header, offset = read_header(path)
    problem = header.incompatibility()
    if problem:
        raise _unusable(path, problem)
    payload = path.read_bytes()[offset:]
    if len(payload) != header.size or hashlib.sha256(payload).hexdigest() != header.sha256:
        raise _unusable(path, "its contents do not match their digest")
    return header, payload


def write_durably(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over `path`, fsync the directory: after a
    crash at any point the file is either the old one or the new one, whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# pickling ----------------------------------------------------------------------------------------
def _new_lock() -> Any:
    return threading.Lock()


def _new_rlock() -> Any:
    return threading.RLock()


# types that mean nothing in another process: pickled as a fresh empty one
TRANSIENT: dict[type, Callable[[], Any]] = {type(threading.Lock()): _new_lock,
                                            type(threading.RLock()): _new_rlock}


def _backend_dicts() -> dict[str, Any]:
    from moto.backends import get_backend
    return {name: get_backend(name) for name in SERVICES}  # type: ignore[arg-type]


_DICT_NAMES: dict[type, tuple[str, str]] = {}


def _dict_name(cls: type) -> tuple[str, str]:
    """(module, attribute) of the BackendDict that holds backends of class `cls`."""
    if cls not in _DICT_NAMES:
        from moto.core.base_backend import BackendDict
        module = importlib.import_module(cls.__module__.rsplit(".models", 1)[0] + ".models"
                                         if ".models" in cls.__module__ else cls.__module__)
        found = [name for name, value in vars(module).items()
                 if isinstance(value, BackendDict) and value.backend is cls]
        if not found:
            raise StateError(f"no BackendDict holds {cls.__module__}.{cls.__name__}")
        _DICT_NAMES[cls] = (module.__name__, found[0])
    return _DICT_NAMES[cls]


def _without_stock_images(state: dict) -> dict:
    """An EC2 backend's state minus moto's stock AMIs and their snapshots (regenerated at load)."""
    stock = {i: a for i, a in state["amis"].items() if getattr(a, "owner_alias", None) == STOCK_ALIAS}
    snapshots = {a.ebs_snapshot.id for a in stock.values() if getattr(a, "ebs_snapshot", None) is not None}
    return {**state, "amis": {i: a for i, a in state["amis"].items() if i not in stock},
            "snapshots": {i: s for i, s in state["snapshots"].items() if i not in snapshots}}


def _regenerate_stock_images(backend: Any) -> None:
    """What moto does when it creates an EC2 backend; stock images deleted before stay deleted."""
    backend._load_amis()
    for ami_id in backend.deleted_amis:
        gone = backend.amis.pop(ami_id, None)
        if gone is not None and getattr(gone, "ebs_snapshot", None) is not None:
            backend.snapshots.pop(gone.ebs_snapshot.id, None)


# per service: what its saved state leaves out, and how a loaded backend gets it back
TRIM: dict[str, Callable[[dict], dict]] = {"ec2": _without_stock_images}
REBUILD: dict[str, Callable[[Any], None]] = {"ec2": _regenerate_stock_images}


class _Pickler(pickle.Pickler):
    def __init__(self, out: io.BytesIO):
        from moto.core.base_backend import BaseBackend
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.backend_type = BaseBackend
        # a Pickler's own dispatch_table replaces copyreg's: start from it (re.Pattern is there)
        self.dispatch_table = {**copyreg.dispatch_table,
                               **{cls: (lambda obj, make=make: (make, ())) for cls, make in TRANSIENT.items()}}

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, self.backend_type):
            return (*_dict_name(type(obj)), obj.account_id, obj.region_name)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, persisted: set[tuple[str, str]]):
        super().__init__(io.BytesIO(data))
        self.persisted = persisted
        self.restored: dict[tuple[str, str, str, str], Any] = {}

    def backend(self, key: tuple[str, str, str, str]) -> Any:
        module, attr, account, region = key
        backends = getattr(importlib.import_module(module), attr)
        if (module, attr) not in self.persisted:
            return backends[account][region]  # not ours to restore: this process's live one
        if key not in self.restored:
            self.restored[key] = backends.backend.__new__(backends.backend)
        return self.restored[key]

    def persistent_load(self, pid: Any) -> Any:
        return self.backend(tuple(pid))


def dump() -> bytes:
    """The persisted services' backends, pickled (the caller holds off concurrent mutations)."""
    tree: dict[str, dict] = {}
    for service, backends in _backend_dicts().items():
        trim = TRIM.get(service, dict)
        tree[service] = {account: {region: trim(dict(vars(backend))) for region, backend in regions.items()}
                         for account, regions in backends.items()}
    out = io.BytesIO()
    _Pickler(out).dump({"names": {s: _dict_name(b.backend) for s, b in
                                                                    _backend_dicts().items()},
                                                          "tree": tree})
    return out.getvalue()


def restore(payload: bytes) -> int:
    """Install the backends a payload holds into moto (before anything serves). Returns how many."""
    backends = _backend_dicts()
    persisted = {_dict_name(b.backend) for b in backends.values()}
    loader = _Unpickler(payload, persisted)
    doc = loader.load()
    count = 0
    for service, accounts in doc["tree"].items():
        module, attr = doc["names"][service]
        for account, regions in accounts.items():
            for region, state in regions.items():
                backend = loader.backend((module, attr, account, region))
                backend.__dict__.update(state)
                backends[service][account][region] = backend
                count += 1
    for service, accounts in doc["tree"].items():
        rebuild = REBUILD.get(service)
        for account, regions in accounts.items():
            for region in regions if rebuild else ():
                rebuild(backends[service][account][region])
    return count


class Store:
    """The state file of one embedded cloud: loaded once at start, saved after each change,
    encrypted with `box` (its key file)."""

    def __init__(self, path: Path, box: SecretBox):
        self.path = path
        self.box = box
        self._last: bytes | None = None

    def payload(self) -> bytes:
        """The pickle the file holds now (decrypted)."""
        header, stored = verify(self.path)
        if header.format == 1:
            return stored
        try:
            return self.box.decrypt(stored, PURPOSE)
        except EucadbError:
            raise _unusable(self.path, f"it does not decrypt with {self.box.key_file} (another cloud's "
                                       f"key, or a new one after the key file was lost)") from None

    def load(self) -> int:
        """Restore the saved backends, if there is a file; StateError (file untouched) otherwise."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a save cut short by a crash
            stale.unlink()
        if not self.path.exists():
            return 0
        payload = self.payload()
        try:
            count = restore(payload)
        except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the file is unusable here
            raise _unusable(self.path, f"{type(exc).__name__}: {exc}") from None
        self._last = payload
        return count

    def save(self) -> bool:
        """Write the current state if it changed since the last write. True if written."""
        payload = dump()
        if payload == self._last:
            return False
        stored = self.box.encrypt(payload, PURPOSE)
        header = json.dumps(asdict(Header.current(stored)), separators=(",", ":")).encode()
        write_durably(self.path, MAGIC + header + b"\n" + stored)
        self._last = payload
        return True


def describe(path: Path) -> dict[str, Any]:
    """Where the state lives, its size and when it was written (for `eucadb cloud status`)."""
    if not path.exists():
        return {"path": str(path), "size": None, "written": None, "problem": "not written yet"}
    info: dict[str, Any] = {"path": str(path), "size": path.stat().st_size, "written": None, "problem": None}
    try:
        header, _ = read_header(path)
        info["written"] = header.written
        info["problem"] = header.incompatibility()
    except StateError as exc:
        info["problem"] = str(exc)
    return info
