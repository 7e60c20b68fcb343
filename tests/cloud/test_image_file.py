"""`eucadb image install --file`: a raw disk goes into a snapshot through the EBS direct APIs of the
embedded cloud, and comes back out of it block for block; the image boots from that snapshot."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from moto_server import MotoServer

MIB = 1 << 20
BLOCK = 512 * 1024  # the block size the cloud answers (AWS's; moto's is fixed up to it)


def make_disk(path: Path, seed: bytes = b"eucadb") -> bytes:
    """A real MBR-partitioned disk: 1 MiB gap, a 3 MiB ext4 partition holding files, then a few
    non-zero bytes past the last whole block (so the final block is a partial one)."""
    tree = path.parent / f"{path.stem}-tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("eucadb-db\n")
    (tree / "payload").write_bytes(hashlib.sha256(seed).digest() * 4096)
    fs = path.parent / f"{path.stem}.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "eucadb-root", "-d", str(tree), str(fs), "3M"],
                   check=True, capture_output=True)
    mbr = bytearray(512)
    # one primary Linux partition: LBA 2048, 3 MiB (CHS fields left zero, as LBA-only tools write)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 3 * MIB // 512)
    mbr[510:512] = b"\x55\xaa"
    data = bytes(mbr).ljust(MIB, b"\0") + fs.read_bytes() + b"tail" * 250
    path.write_bytes(data)
    return data


def read_back(cloud, snapshot_id: str, length: int) -> tuple[bytes, int]:
    """The snapshot's first `length` bytes as a reader of the volume sees them (listed blocks, zeros
    elsewhere), and how many blocks were written."""
    ebs = cloud.client("ebs")
    listing = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    assert listing["BlockSize"] == BLOCK
    disk = bytearray(-(-length // BLOCK) * BLOCK)
    for block in listing["Blocks"]:
        got = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=block["BlockIndex"],
                                     BlockToken=block["BlockToken"])
        data = got["BlockData"].read()
        assert len(data) == BLOCK
        disk[block["BlockIndex"] * BLOCK:(block["BlockIndex"] + 1) * BLOCK] = data
    return bytes(disk[:length]), len(listing["Blocks"])


def image_property(cloud) -> str:
    got = json.loads(cloud.cli("property", "get", "services.database.worker.image", "-o", "json").stdout)
    return got["value"]


def digest_snapshots(cloud, data: bytes) -> list[dict]:
    digest = hashlib.sha256(data).hexdigest()[:16]
    return cloud.client("ec2").describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:eucadb:image-digest", "Values": [digest]}])["Snapshots"]


def test_disk_round_trips_through_the_snapshot_and_the_image_boots_from_it(cloud, tmp_path):
    disk = tmp_path / "eucadb-db.raw"
    data = make_disk(disk)
    before = image_property(cloud)
    done = cloud.cli("image", "install", "--file", str(disk))
    image_id = done.stdout.strip()
    assert image_id.startswith("ami-") and "\n" not in image_id
    assert "uploading: 100%" in done.stderr
    # the embedded cloud's instances are processes: it registers the disk but must not boot it
    assert "cannot boot disk images" in done.stderr and image_property(cloud) == before

    image = cloud.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["eucadb:image"] == "db"
    assert tags["eucadb:image-digest"] == hashlib.sha256(data).hexdigest()[:16]
    assert (image["RootDeviceName"], image["BootMode"], image["Architecture"]) == ("/dev/xvda", "uefi", "x86_64")
    root = [m for m in image["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
    assert root and root[0]["Ebs"]["SnapshotId"] == tags["eucadb:image-snapshot"]

    snapshot_id = tags["eucadb:image-snapshot"]
    assert cloud.client("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["State"] == "completed"
    content, sent = read_back(cloud, snapshot_id, len(data))
    assert content == data, "the snapshot must hold the disk byte for byte"
    total = -(-len(data) // BLOCK)
    assert 0 < sent < total, f"all-zero blocks are not sent ({sent} of {total} were)"

    # same content again: same image, no second upload
    assert cloud.cli("image", "install", "--file", str(disk)).stdout.strip() == image_id
    assert [s["SnapshotId"] for s in digest_snapshots(cloud, data)] == [snapshot_id]


def leftover_upload(cloud, data: bytes, holder: str) -> str:
    """A snapshot as an install left it: started, tagged with its uploader, never completed."""
    sha = hashlib.sha256(data).hexdigest()
    return cloud.client("ebs").start_snapshot(
        VolumeSize=1, Description=f"eucadb DB image x.raw (sha256 {sha})",
        Tags=[{"Key": "eucadb:image-digest", "Value": sha[:16]},
              {"Key": "eucadb:image-upload", "Value": holder}])["SnapshotId"]


def dead_holder() -> str:
    """The holder id of a process of this host that has exited."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:abcdef"


def test_interrupted_installs_resume_without_leftovers(cloud, tmp_path):
    disk = tmp_path / "resume.raw"
    data = make_disk(disk, seed=b"resume")
    # another install of the same disk is uploading right now (a live process): left alone
    alive = leftover_upload(cloud, data, f"{socket.gethostname()}:{os.getpid()}:abcdef")
    busy = cloud.cli("image", "install", "--file", str(disk), check=False)
    assert busy.returncode == 1 and f"snapshot {alive} of this disk is being uploaded" in busy.stderr
    assert "Traceback" not in busy.stderr
    cloud.client("ec2").delete_snapshot(SnapshotId=alive)

    # a run killed mid-upload left a snapshot that was never completed: deleted, uploaded anew
    crashed = leftover_upload(cloud, data, dead_holder())
    image_id = cloud.cli("image", "install", "--file", str(disk)).stdout.strip()
    snapshots = digest_snapshots(cloud, data)
    assert [s["State"] for s in snapshots] == ["completed"]
    assert snapshots[0]["SnapshotId"] != crashed, "the unfinished upload is deleted, not used"

    # a run killed after the upload but before RegisterImage: the completed snapshot is reused
    ec2 = cloud.client("ec2")
    ec2.deregister_image(ImageId=image_id)
    again = cloud.cli("image", "install", "--file", str(disk)).stdout.strip()
    assert again != image_id
    image = ec2.describe_images(ImageIds=[again])["Images"][0]
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snapshots[0]["SnapshotId"]
    assert [s["SnapshotId"] for s in digest_snapshots(cloud, data)] == [snapshots[0]["SnapshotId"]]
    # while the image exists, its root snapshot cannot be deleted (as in AWS)
    with pytest.raises(ClientError, match="InvalidSnapshot.InUse"):
        ec2.delete_snapshot(SnapshotId=snapshots[0]["SnapshotId"])


class StderrWatch:
    """A child's stderr, read on a thread: `wait_for` returns as soon as a line holds some text."""

    def __init__(self, proc: subprocess.Popen):
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def text(self) -> str:
        """All of stderr, once the child has closed it (bounded: what was read so far otherwise)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended, 10)
            return "".join(self._lines)

    def wait_for(self, text: str, timeout: float) -> None:
        def seen() -> bool:
            return any(text in line for line in self._lines)
        with self._changed:
            self._changed.wait_for(lambda: seen() or self._ended, timeout)
            if not seen():
                raise AssertionError(f"no {text!r} on stderr after {timeout}s"
                                     f"{' (the process ended)' if self._ended else ''}:\n{''.join(self._lines)}")


def test_a_sealed_upload_still_pending_is_waited_for_not_sent_again(cloud, tmp_path):
    """CompleteSnapshot answered, the cloud still processing, the installer gone: the next run waits
    for that snapshot and registers it."""
    disk = tmp_path / "sealed.raw"
    data = make_disk(disk, seed=b"sealed")
    sealed = leftover_upload(cloud, data, "sealed")
    # DEBUG: the retry helper logs each poll that found the snapshot still pending
    install = subprocess.Popen([sys.executable, "-m", "eucadb.cli", "image", "install", "--file", str(disk)],
                               env={**cloud.env, "EUCADB_LOG_LEVEL": "DEBUG"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stderr = StderrWatch(install)
    stderr.wait_for(f"reusing snapshot {sealed}", 60)
    stderr.wait_for(f"snapshot {sealed} failed (attempt 2: pending)", 60)
    assert install.poll() is None, "it must wait while the snapshot is pending"
    cloud.client("ebs").complete_snapshot(SnapshotId=sealed, ChangedBlocksCount=0)
    assert install.wait(timeout=120) == 0, stderr.text()   # stdout is one line: no pipe fills up
    out = install.stdout.read()
    assert "uploading" not in stderr.text(), "the sealed snapshot is not sent again"
    image = cloud.client("ec2").describe_images(ImageIds=[out.strip()])["Images"][0]
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == sealed
    assert [s["SnapshotId"] for s in digest_snapshots(cloud, data)] == [sealed]


def test_on_another_cloud_the_image_becomes_the_worker_image(home, tmp_path):
    """A cloud that is not the embedded one (a bare moto server, which answers moto's own 512-byte
    blocks: the uploader follows the BlockSize the cloud answers)."""
    disk = tmp_path / "eucadb-db.raw"
    make_disk(disk)
    with MotoServer() as moto:
        env = {**os.environ, **moto.env()}
        done = subprocess.run([sys.executable, "-m", "eucadb.cli", "image", "install", "--file", str(disk)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        image_id = done.stdout.strip()
        got = json.loads(subprocess.run([sys.executable, "-m", "eucadb.cli", "property", "get",
                                         "services.database.worker.image", "-o", "json"], env=env,
                                        capture_output=True, text=True, timeout=60).stdout)
        image = boto3.client("ec2", endpoint_url=moto.endpoint, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing"
                             ).describe_images(ImageIds=[image_id])["Images"][0]
    assert got["value"] == image_id
    assert {"Key": "eucadb:image", "Value": "db"} in image["Tags"]
    # the default instance type boots legacy BIOS only: the launch would refuse it, so say so now
    assert "warning: services.database.worker.instance_type: m1.small boots legacy-bios only" in done.stderr


def _qcow2(path: Path) -> None:
    path.write_bytes(b"QFI\xfb\x00\x00\x00\x03" + bytes(8192))


def _tarball(path: Path) -> None:
    path.write_bytes(gzip.compress(bytes(65536)))


def _noise(path: Path) -> None:
    path.write_bytes(os.urandom(65536))


@pytest.mark.parametrize("make, args, expected", [
    (None, ["--file", "{missing}"], "no such file"),
    (None, ["--file", "{dir}"], "not a regular file"),
    (_qcow2, ["--file", "{f}"], "qcow2 image, not a raw disk image: convert it: qemu-img convert"),
    (_tarball, ["--file", "{f}"], "gzip-compressed"),
    (_noise, ["--file", "{f}"], "no GPT or MBR partition table"),
    (_noise, ["--file", "{f}", "--local"], "exactly one of --local"),
    (None, [], "exactly one of --local"),
], ids=["missing", "directory", "qcow2", "gzip", "not-a-disk", "both", "neither"])
def test_bad_input_is_refused_and_nothing_changes(cloud, tmp_path, make, args, expected):
    f = tmp_path / "disk.img"
    if make:
        make(f)
    args = [a.format(missing=tmp_path / "nope.raw", dir=tmp_path, f=f) for a in args]
    ec2 = cloud.client("ec2")
    before = (image_property(cloud), len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
              len(ec2.describe_images(Owners=["self"])["Images"]))
    done = cloud.cli("image", "install", *args, check=False)
    assert done.returncode != 0
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    after = (image_property(cloud), len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
             len(ec2.describe_images(Owners=["self"])["Images"]))
    assert after == before


class _NoEbsProxy:
    """A cloud like Eucalyptus: EC2 and the rest answered (by a moto server), the EBS direct APIs
    unknown (404). Forwards by the SigV4 credential scope's service name."""

    def __init__(self, upstream: str):
        scope = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service = scope.search(self.headers.get("Authorization", ""))
                if service and service.group(1) == "ebs":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = urllib.request.Request(upstream + self.path, data=body or None,
                                                 method=self.command, headers=dict(self.headers))
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, headers, payload = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as exc:
                    status, headers, payload = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for key in ("Content-Type", "x-amzn-RequestId"):
                    if headers.get(key):
                        self.send_header(key, headers[key])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_cloud_without_ebs_direct_apis_gets_a_clear_error_and_keeps_nothing(home, tmp_path):
    disk = tmp_path / "eucadb-db.raw"
    digest = hashlib.sha256(make_disk(disk, seed=b"no-ebs")).hexdigest()[:16]
    with MotoServer() as moto:
        proxy = _NoEbsProxy(moto.endpoint)
        try:
            env = {**os.environ, **moto.env(), "EUCADB_CLOUD_ENDPOINT_URL": proxy.endpoint}
            done = subprocess.run([sys.executable, "-m", "eucadb.cli", "image", "install", "--file", str(disk)],
                                  env=env, capture_output=True, text=True, timeout=120)
            prop = subprocess.run([sys.executable, "-m", "eucadb.cli", "property", "get",
                                   "services.database.worker.image", "-o", "json"],
                                  env=env, capture_output=True, text=True, timeout=60)
            ec2 = boto3.client("ec2", endpoint_url=moto.endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            # moto's state is per process, shared with the other in-process servers: look for ours
            images = ec2.describe_images(Owners=["self"], Filters=[
                {"Name": "name", "Values": [f"eucadb-db-disk-{digest}"]}])["Images"]
            snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
                {"Name": "tag:eucadb:image-digest", "Values": [digest]}])["Snapshots"]
        finally:
            proxy.close()
    assert done.returncode == 1 and done.stdout == ""
    assert "offers no EBS direct APIs" in done.stderr and "euca-install-image" in done.stderr
    assert "Traceback" not in done.stderr
    assert images == [] and snapshots == []
    assert json.loads(prop.stdout)["value"] in ("", None)
