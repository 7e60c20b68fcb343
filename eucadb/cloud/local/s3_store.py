"""The embedded S3's storage: buckets, objects and multipart uploads as files under `<data_dir>/s3/`.

    buckets/<bucket>/bucket.json                     region, creation time
    buckets/<bucket>/policy.json                     the bucket policy, verbatim
    buckets/<bucket>/objects/<hh>/<h>.json           sidecar: key, size, ETag, metadata, data file name
    buckets/<bucket>/objects/<hh>/<h>.<token>.data   the bytes (h = sha256 of the key)
    buckets/<bucket>/uploads/<id>/upload.json        a multipart upload; parts as <n>.json + <n>.<token>.data
    tmp/                                             data being received (same file system: rename)

Why hashed names: a key is any UTF-8 string ("../x", 1024 bytes long) and must never become a path.
Why a data file named by the sidecar: the sidecar's rename is the one commit point of a write, so a
reader sees the old object or the new one, never new bytes with old metadata; a crash leaves at
worst an unreferenced data file, removed the next time the bucket is indexed.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from eucadb.cloud.local.s3_wire import S3Error

BUCKET_NAME = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)(?!.*\.\.)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")


@dataclass
class ObjectMeta:
    """What the sidecar holds: everything but the bytes."""
    key: str
    size: int
    etag: str  # without quotes
    last_modified: float
    data: str = ""  # data file name, next to the sidecar
    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)  # stored system headers (Cache-Control, …)
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64 (composite: "…-N")
    checksum_type: str | None = None  # FULL_OBJECT / COMPOSITE, when a checksum is stored
    parts: int | None = None  # number of parts of a multipart object

    @classmethod
    def load(cls, path: Path) -> "ObjectMeta":
        return cls(**json.loads(path.read_text()))


@dataclass
class Upload:
    upload_id: str
    key: str
    initiated: float
    template: ObjectMeta  # content type, headers, metadata the completed object gets
    algorithm: str | None = None  # x-amz-checksum-algorithm given at creation

    @classmethod
    def load(cls, path: Path) -> "Upload":
        raw = json.loads(path.read_text())
        return cls(**{**raw, "template": ObjectMeta(**raw["template"])})


@dataclass(frozen=True)
class Bucket:
    name: str
    region: str
    created: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, value: object) -> None:
    """Atomically replace `path`: temp file in the same directory, fsync, rename, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class _Index:
    """A bucket's keys in S3's order (UTF-8 byte order = code point order), for listings without
    reading every sidecar. Only this process writes the bucket, so it stays true once built."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.objects: dict[str, ObjectMeta] = {}

    def put(self, meta: ObjectMeta) -> None:
        if meta.key not in self.objects:
            bisect.insort(self.keys, meta.key)
        self.objects[meta.key] = meta

    def remove(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]


class Store:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"
        self.buckets_dir = root / "buckets"
        self._lock = threading.RLock()  # commits and index changes; never held while data streams
        self._indexes: dict[str, _Index] = {}
        self.buckets_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)  # what a crash left half-received
        self.tmp.mkdir(parents=True, exist_ok=True)

    # temp files ------------------------------------------------------------------------------
    def temp_file(self) -> tuple[Path, BinaryIO]:
        path = self.tmp / secrets.token_hex(12)
        return path, open(path, "xb")

    @staticmethod
    def discard(path: Path) -> None:
        path.unlink(missing_ok=True)

    # buckets ---------------------------------------------------------------------------------
    def _bucket_dir(self, name: str) -> Path:
        if not BUCKET_NAME.fullmatch(name):
            raise S3Error("NoSuchBucket", BucketName=name)
        path = self.buckets_dir / name
        if not (path / "bucket.json").exists():
            raise S3Error("NoSuchBucket", BucketName=name)
        return path

    def bucket(self, name: str) -> Bucket:
        raw = json.loads((self._bucket_dir(name) / "bucket.json").read_text())
        return Bucket(name, raw["region"], raw["created"])

    def create_bucket(self, name: str, region: str) -> bool:
        """False if it already exists (one owner here: it is always the caller's)."""
        if not BUCKET_NAME.fullmatch(name):
            raise S3Error("InvalidBucketName", BucketName=name)
        staged = self.tmp / f"bucket-{secrets.token_hex(8)}"
        for sub in ("objects", "uploads"):
            (staged / sub).mkdir(parents=True)
        write_json(staged / "bucket.json", {"region": region, "created": time.time()})
        with self._lock:
            try:
                os.rename(staged, self.buckets_dir / name)
            except OSError:  # exists (ENOTEMPTY / EEXIST)
                shutil.rmtree(staged, ignore_errors=True)
                return False
            _fsync_dir(self.buckets_dir)
        return True

    def list_buckets(self) -> list[Bucket]:
        names = sorted(p.name for p in self.buckets_dir.iterdir() if (p / "bucket.json").exists())
        found = []
        for name in names:
            try:
                found.append(self.bucket(name))
            except S3Error:  # deleted meanwhile
                continue
        return found

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            path = self._bucket_dir(name)
            if self._index(name).keys:
                raise S3Error("BucketNotEmpty", BucketName=name)
            trash = self.tmp / f"trash-{secrets.token_hex(8)}"
            os.rename(path, trash)
            self._indexes.pop(name, None)
        shutil.rmtree(trash, ignore_errors=True)

    def policy(self, name: str) -> bytes:
        path = self._bucket_dir(name) / "policy.json"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise S3Error("NoSuchBucketPolicy", BucketName=name) from None

    def put_policy(self, name: str, policy: bytes) -> None:
        path = self._bucket_dir(name) / "policy.json"
        tmp = path.with_name(f".policy.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb") as f:
            f.write(policy)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def delete_policy(self, name: str) -> None:
        (self._bucket_dir(name) / "policy.json").unlink(missing_ok=True)

    # objects ---------------------------------------------------------------------------------
    def _sidecar(self, bucket: str, key: str) -> Path:
        h = key_hash(key)
        return self._bucket_dir(bucket) / "objects" / h[:2] / f"{h}.json"

    def _index(self, bucket: str) -> _Index:
        """Built on first use from the sidecars; data files no sidecar names are crash leftovers."""
        with self._lock:
            index = self._indexes.get(bucket)
            if index is not None:
                return index
            index = _Index()
            objects = self._bucket_dir(bucket) / "objects"
            referenced = set()
            for sidecar in objects.glob("*/*.json"):
                meta = ObjectMeta.load(sidecar)
                index.put(meta)
                referenced.add(sidecar.parent / meta.data)
            for data in objects.glob("*/*.data"):
                if data not in referenced:
                    data.unlink(missing_ok=True)
            self._indexes[bucket] = index
            return index

    def commit_object(self, bucket: str, meta: ObjectMeta, received: Path) -> ObjectMeta:
        """Make `received` (a synced temp file) the object's bytes: the sidecar rename commits."""
        with self._lock:
            index = self._index(bucket)
            sidecar = self._sidecar(bucket, meta.key)
            sidecar.parent.mkdir(exist_ok=True)
            meta.data = f"{sidecar.stem}.{secrets.token_hex(6)}.data"
            os.rename(received, sidecar.parent / meta.data)
            old = index.objects.get(meta.key)
            write_json(sidecar, asdict(meta))
            index.put(meta)
            if old is not None:
                (sidecar.parent / old.data).unlink(missing_ok=True)
        return meta

    def head(self, bucket: str, key: str) -> ObjectMeta:
        meta = self._index(bucket).objects.get(key)
        if meta is None:
            raise S3Error("NoSuchKey", Key=key)
        return meta

    def open(self, bucket: str, key: str) -> tuple[ObjectMeta, BinaryIO]:
        """The object and an open file of its bytes (still readable if overwritten meanwhile)."""
        with self._lock:
            meta = self.head(bucket, key)
            return meta, open(self._sidecar(bucket, key).parent / meta.data, "rb")

    def delete(self, bucket: str, key: str) -> None:
        """Idempotent, as S3's DeleteObject is."""
        with self._lock:
            index = self._index(bucket)
            meta = index.objects.get(key)
            if meta is None:
                return
            sidecar = self._sidecar(bucket, key)
            sidecar.unlink()
            index.remove(key)
            (sidecar.parent / meta.data).unlink(missing_ok=True)

    def keys_after(self, bucket: str, after: str, prefix: str) -> Iterator[ObjectMeta]:
        """Objects with `prefix` whose keys sort after `after`, in order. A snapshot of the index:
        listing never blocks writers."""
        index = self._index(bucket)
        with self._lock:
            start = (bisect.bisect_right(index.keys, after) if after >= prefix
                     else bisect.bisect_left(index.keys, prefix))
            keys = index.keys[start:]
        for key in keys:
            if not key.startswith(prefix):
                return
            meta = index.objects.get(key)
            if meta is not None:  # not deleted since
                yield meta

    def data_path(self, bucket: str, meta: ObjectMeta) -> Path:
        return self._sidecar(bucket, meta.key).parent / meta.data

    # multipart uploads -----------------------------------------------------------------------
    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        path = self._bucket_dir(bucket) / "uploads" / upload_id
        if not UPLOAD_ID.fullmatch(upload_id) or not (path / "upload.json").exists():
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return path

    def create_upload(self, bucket: str, key: str, template: ObjectMeta, algorithm: str | None) -> Upload:
        upload = Upload(secrets.token_urlsafe(48), key, time.time(), template, algorithm)
        path = self._bucket_dir(bucket) / "uploads" / upload.upload_id
        path.mkdir()
        write_json(path / "upload.json", asdict(upload))
        return upload

    def upload(self, bucket: str, upload_id: str, key: str) -> Upload:
        upload = Upload.load(self._upload_dir(bucket, upload_id) / "upload.json")
        if upload.key != key:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return upload

    def list_uploads(self, bucket: str) -> list[Upload]:
        uploads = []
        for path in (self._bucket_dir(bucket) / "uploads").glob("*/upload.json"):
            try:
                uploads.append(Upload.load(path))
            except FileNotFoundError:  # completed or aborted meanwhile
                continue
        return sorted(uploads, key=lambda u: (u.key, u.initiated))

    def commit_part(self, bucket: str, upload_id: str, number: int, meta: ObjectMeta, received: Path) -> None:
        """A part is stored like an object (sidecar commits); re-uploading a number replaces it."""
        with self._lock:
            path = self._upload_dir(bucket, upload_id)
            sidecar = path / f"{number:05d}.json"
            old = ObjectMeta.load(sidecar) if sidecar.exists() else None
            meta.data = f"{number:05d}.{secrets.token_hex(6)}.data"
            os.rename(received, path / meta.data)
            write_json(sidecar, asdict(meta))
            if old is not None:
                (path / old.data).unlink(missing_ok=True)

    def parts(self, bucket: str, upload_id: str) -> dict[int, ObjectMeta]:
        path = self._upload_dir(bucket, upload_id)
        return {int(p.stem): ObjectMeta.load(p) for p in sorted(path.glob("[0-9]*.json"))}

    def part_path(self, bucket: str, upload_id: str, meta: ObjectMeta) -> Path:
        return self._upload_dir(bucket, upload_id) / meta.data

    def finish_upload(self, bucket: str, upload_id: str) -> None:
        """Forget an upload (completed or aborted) and its parts."""
        with self._lock:
            path = self._upload_dir(bucket, upload_id)
            trash = self.tmp / f"trash-{secrets.token_hex(8)}"
            os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
