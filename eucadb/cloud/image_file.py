"""`eucadb image install --file DISK`: register a raw disk built by `image/build.sh` in the target cloud.

Why the EBS direct APIs (StartSnapshot / PutSnapshotBlock / CompleteSnapshot, what AWS's coldsnap
does) rather than ImportImage: ImportImage needs an S3 bucket, the `vmimport` service role and an
asynchronous conversion task; writing the disk's blocks straight into a snapshot is one synchronous
command with no extra IAM setup, and the AMI then boots from that snapshot (RegisterImage with a
root block device mapping, UEFI, as build.sh makes it).

Resumable by content: the image's name and the snapshot's tags carry the disk's SHA-256, so a second
run (or one after a crash) reuses a registered image, waits for and registers an upload that was
completed, and deletes an upload whose uploader died on this host (an EBS direct snapshot cannot be
reopened). An upload still held by a live eucadb is left alone, with an error naming it.
All-zero blocks are not sent: a new snapshot reads as zeros where nothing was written.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from eucadb.cloud.client import error_code
from eucadb.cloud.images import DIGEST_TAG, SNAPSHOT_TAG, ensure_image, find_image, image_name
from eucadb.errors import CloudError, CloudUnreachable, UserError
from eucadb.holders import holder_id, holder_is_dead
from eucadb.retry import NotYet, Retry, RetryTimeout

log = logging.getLogger(__name__)
GIB = 1 << 30
ROOT_DEVICE = "/dev/xvda"
UPLOAD_TAG = "eucadb:image-upload"  # on snapshots this installer started: its holder id, then SEALED
SEALED = "sealed"                   # CompleteSnapshot answered: only the cloud's processing is left
EBS_DIRECT_OPERATIONS = frozenset({"StartSnapshot", "PutSnapshotBlock", "CompleteSnapshot"})
NO_EBS_DIRECT = frozenset({"404", "UnknownOperationException", "InvalidAction", "NotImplemented",
                           "UnrecognizedClientException"})

# (magic, offset, what it is, what to do instead) for the disk formats people commonly hold
_NOT_RAW = (
    (b"QFI\xfb", 0, "a qcow2 image", "convert it: qemu-img convert -O raw IN OUT.raw"),
    (b"KDMV", 0, "a VMDK image", "convert it: qemu-img convert -O raw IN OUT.raw"),
    (b"vhdxfile", 0, "a VHDX image", "convert it: qemu-img convert -O raw IN OUT.raw"),
    (b"\x1f\x8b", 0, "gzip-compressed", "decompress it first (or pass build.sh's eucadb-db.raw)"),
    (b"\xfd7zXZ\x00", 0, "xz-compressed", "decompress it first"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd-compressed", "decompress it first"),
)


@dataclass(frozen=True)
class DiskFile:
    """A raw disk image checked for what we can upload: its size and content digest."""
    path: Path
    size: int
    sha256: str

    @property
    def digest(self) -> str:
        return self.sha256[:16]

    @property
    def description(self) -> str:
        """For the snapshot and the image: at most 255 characters, the full digest always in it."""
        return f"eucadb DB image {self.path.name[:100]} (sha256 {self.sha256})"

    @property
    def volume_gib(self) -> int:
        return max(1, math.ceil(self.size / GIB))


def inspect_disk(path: Path) -> DiskFile:
    """Refuse (UserError, nothing uploaded) what is not a raw disk with a partition table or a
    bare ext2/3/4 filesystem; digest what is."""
    if not path.exists():
        raise UserError(f"--file {path}: no such file")
    if not path.is_file():
        raise UserError(f"--file {path}: not a regular file (expected a raw disk image, e.g. "
                        "build.sh's eucadb-db.raw)")
    try:
        with path.open("rb") as f:
            head = f.read(2048)
    except OSError as exc:
        raise UserError(f"--file {path}: cannot read it ({exc.strerror})") from None
    for magic, offset, what, fix in _NOT_RAW:
        if head[offset:offset + len(magic)] == magic:
            raise UserError(f"--file {path} is {what}, not a raw disk image: {fix}")
    size = path.stat().st_size
    if size < 4096:
        raise UserError(f"--file {path}: {size} bytes is too small to be a disk image")
    gpt = head[512:520] == b"EFI PART"
    mbr = head[510:512] == b"\x55\xaa"
    ext = head[1080:1082] == b"\x53\xef"
    if not (gpt or mbr or ext):
        raise UserError(f"--file {path} is not a raw disk image: no GPT or MBR partition table and no "
                        "ext2/3/4 filesystem at its start (build it with image/build.sh OUTDIR --raw SIZE_GB)")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return DiskFile(path, size, digest.hexdigest())


BLOCK_TRANSIENT_CODES = frozenset({"ResourceNotFoundException", "RequestThrottledException",
                                   "InternalServerException", "ServiceQuotaExceededException"})


def _block_transient(exc: BaseException) -> bool:
    """Worth sending the block again: throttling, a server fault, the snapshot not yet visible right
    after StartSnapshot (eventual consistency), or the endpoint briefly unreachable."""
    if isinstance(exc, CloudUnreachable):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in BLOCK_TRANSIENT_CODES or status >= 500


# botocore's standard mode already retries throttling 4 times inside each call; this covers the rest
BLOCK_RETRY = Retry(deadline=120, max_delay=10, retry_on=(ClientError, CloudUnreachable),
                    is_transient=_block_transient)


class Uploader:
    """Writes one disk file into a new snapshot through the EBS direct APIs."""

    def __init__(self, clients: Any, disk: DiskFile, workers: int = 8,
                 on_progress: Callable[[int, int], None] | None = None):
        self.clients, self.disk, self.workers = clients, disk, workers
        self.on_progress = on_progress or (lambda done, total: None)
        self._lock = threading.Lock()

    def upload(self) -> str:
        started = self.clients.call(
            "ebs", "start_snapshot", VolumeSize=self.disk.volume_gib,  # boto3 adds the ClientToken
            Timeout=min(4320, max(60, 10 * self.disk.volume_gib)),  # minutes until AWS gives up on it
            Description=self.disk.description,
            Tags=[{"Key": DIGEST_TAG, "Value": self.disk.digest}, {"Key": UPLOAD_TAG, "Value": holder_id()}])
        snapshot_id, block_size = started["SnapshotId"], int(started["BlockSize"])
        try:
            checksums = self._put_blocks(snapshot_id, block_size)
            # LINEAR: SHA-256 over the blocks' SHA-256 digests in block order (AWS's aggregate form)
            aggregate = hashlib.sha256(b"".join(d for _, d in sorted(checksums.items()))).digest()
            self.clients.call("ebs", "complete_snapshot", SnapshotId=snapshot_id,
                              ChangedBlocksCount=len(checksums), ChecksumAlgorithm="SHA256",
                              ChecksumAggregationMethod="LINEAR",
                              Checksum=base64.b64encode(aggregate).decode())
        except BaseException:
            _delete_snapshot(self.clients, snapshot_id)  # an unfinished snapshot is worthless
            raise
        self.clients.call("ec2", "create_tags", Resources=[snapshot_id],
                          Tags=[{"Key": UPLOAD_TAG, "Value": SEALED}])
        return snapshot_id

    def _put_blocks(self, snapshot_id: str, block_size: int) -> dict[int, bytes]:
        total = math.ceil(self.disk.size / block_size)
        zero = bytes(block_size)
        checksums: dict[int, bytes] = {}
        done = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="upload") as pool, \
                self.disk.path.open("rb") as f:
            pending: set[Future] = set()
            try:
                for index in range(total):
                    block = f.read(block_size).ljust(block_size, b"\0")
                    if block == zero:
                        continue
                    pending.add(pool.submit(self._put, snapshot_id, index, block, checksums))
                    if len(pending) >= 2 * self.workers:  # bounded memory: a few blocks in flight
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        done += _settle(finished)
                        self.on_progress(index + 1, total)
                done += _settle(wait(pending).done)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # queued blocks are not worth sending
                raise
        self.on_progress(total, total)
        log.info("uploaded %d of %d blocks of %s (the rest are zeros)", done, total, self.disk.path.name)
        return checksums

    def _put(self, snapshot_id: str, index: int, block: bytes, checksums: dict[int, bytes]) -> None:
        digest = hashlib.sha256(block).digest()
        BLOCK_RETRY.call(lambda: self.clients.call(
            "ebs", "put_snapshot_block", SnapshotId=snapshot_id, BlockIndex=index, BlockData=block,
            DataLength=len(block), ChecksumAlgorithm="SHA256", Checksum=base64.b64encode(digest).decode()),
            f"block {index} of {snapshot_id}")
        with self._lock:
            checksums[index] = digest


def _settle(finished: set[Future]) -> int:
    for future in finished:
        future.result()  # re-raise the first failed upload
    return len(finished)


def _delete_snapshot(clients: Any, snapshot_id: str) -> None:
    try:
        clients.call("ec2", "delete_snapshot", SnapshotId=snapshot_id)
    except (CloudError, ClientError, BotoCoreError) as exc:  # the original failure matters more
        log.warning("could not delete unfinished snapshot %s (delete it by hand): %s", snapshot_id, exc)


def _previous_uploads(clients: Any, disk: DiskFile) -> list[dict]:
    found = clients.call("ec2", "describe_snapshots", OwnerIds=["self"], Filters=[
        {"Name": f"tag:{DIGEST_TAG}", "Values": [disk.digest]},
        {"Name": "tag-key", "Values": [UPLOAD_TAG]}])["Snapshots"]
    # the tag is 64 bits of the digest; the description names all of it
    return [s for s in found if disk.sha256 in s.get("Description", "")]


def _holder(snapshot: dict) -> str:
    return next((t["Value"] for t in snapshot.get("Tags", []) if t["Key"] == UPLOAD_TAG), "")


def _wait_completed(clients: Any, snapshot_id: str, disk: DiskFile) -> str:
    def completed() -> None:
        state = clients.call("ec2", "describe_snapshots", SnapshotIds=[snapshot_id])["Snapshots"][0]["State"]
        if state == "error":
            raise CloudError(f"snapshot {snapshot_id} of {disk.path} failed in the cloud; delete it and "
                             "run the install again")
        if state != "completed":
            raise NotYet(state)

    deadline = 600 + 60 * disk.volume_gib  # the cloud's own processing after CompleteSnapshot
    try:
        Retry(deadline=deadline, max_delay=5, retry_on=(NotYet,)).call(completed, f"snapshot {snapshot_id}")
    except RetryTimeout:
        raise CloudError(f"snapshot {snapshot_id} holds the whole disk but the cloud still reports it "
                         f"pending after {deadline}s; run the same install again later: it waits for "
                         "this snapshot and registers the image") from None
    return snapshot_id


def root_snapshot(clients: Any, disk: DiskFile, workers: int = 8,
                  on_progress: Callable[[int, int], None] | None = None) -> str:
    """A completed snapshot holding `disk`: one a previous run finished or sealed, or a new upload."""
    for snapshot in _previous_uploads(clients, disk):
        snapshot_id, state, holder = snapshot["SnapshotId"], snapshot["State"], _holder(snapshot)
        if state == "completed" or (state == "pending" and holder == SEALED):
            log.info("reusing snapshot %s uploaded earlier from the same disk (%s)", snapshot_id, state)
            return _wait_completed(clients, snapshot_id, disk)
        if state == "pending" and not holder_is_dead(holder):
            raise CloudError(f"snapshot {snapshot_id} of this disk is being uploaded by {holder or 'someone'} "
                             f"(started {snapshot.get('StartTime')}); wait for that install, or delete the "
                             "snapshot if it was killed on another host")
        log.info("deleting unfinished upload %s (%s, uploader %s is gone)", snapshot_id, state, holder)
        _delete_snapshot(clients, snapshot_id)
    return _wait_completed(clients, Uploader(clients, disk, workers, on_progress).upload(), disk)


def install_image_file(app: Any, path: Path, workers: int = 8,
                       on_progress: Callable[[int, int], None] | None = None) -> str:
    """Upload (or find) the disk and its image; return the image id."""
    disk = inspect_disk(Path(path))
    try:
        return _install(app, disk, workers, on_progress)
    except ClientError as exc:
        code = error_code(exc)
        hint = (" — this cloud offers no EBS direct APIs (Eucalyptus does not): bundle the root "
                "filesystem with euca-install-image and set services.database.worker.image to its EMI"
                ) if code in NO_EBS_DIRECT and exc.operation_name in EBS_DIRECT_OPERATIONS else ""
        raise CloudError(f"installing {disk.path} failed: {code or 'error'}: "
                         f"{exc.response.get('Error', {}).get('Message', exc)}{hint}") from None
    except RetryTimeout as exc:  # a block the cloud kept refusing as "try again"
        raise CloudError(f"installing {disk.path} failed: {exc}; nothing was kept, run it again") from None


def _install(app: Any, disk: DiskFile, workers: int,
             on_progress: Callable[[int, int], None] | None) -> str:
    name = image_name("disk", disk.digest)
    found = find_image(app.clients, name)
    snapshot_id = _root_of(found) if found else root_snapshot(app.clients, disk, workers, on_progress)
    return ensure_image(app.clients, name, disk.digest, {
        "Description": disk.description,
        "Architecture": "x86_64", "VirtualizationType": "hvm", "BootMode": "uefi", "EnaSupport": True,
        "RootDeviceName": ROOT_DEVICE,
        "BlockDeviceMappings": [{"DeviceName": ROOT_DEVICE, "Ebs": {
            "SnapshotId": snapshot_id, "VolumeSize": disk.volume_gib, "VolumeType": "gp3",
            "DeleteOnTermination": True}}]}, {SNAPSHOT_TAG: snapshot_id})


def _root_of(image: dict) -> str:
    root = image.get("RootDeviceName")
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root and mapping.get("Ebs", {}).get("SnapshotId"):
            return mapping["Ebs"]["SnapshotId"]
    raise CloudError(f"image {image['ImageId']} has no root snapshot")
