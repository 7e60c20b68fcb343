"""What the uploader sends, checked call by call: moto accepts any checksum, AWS does not.

A recording cloud stands in for the EBS direct APIs here (and only here: the round trip through a
real endpoint is tests/cloud/test_image_file.py). It answers like AWS — 512 KiB blocks — and can
fail chosen blocks.
"""
from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from eucadb.cloud.image_file import SEALED, UPLOAD_TAG, Uploader, inspect_disk

BLOCK = 512 * 1024


class RecordingCloud:
    """`clients.call(service, operation, **params)` as CloudClients offers it, recording each call."""

    def __init__(self, fail: dict[int, list[str]] | None = None):
        self.calls: list[tuple[str, str, dict]] = []
        self.fail = fail or {}  # block index -> error codes to answer, one per attempt
        self.lock = threading.Lock()

    def call(self, service: str, operation: str, **params):
        with self.lock:
            self.calls.append((service, operation, params))
            if operation == "put_snapshot_block" and self.fail.get(params["BlockIndex"]):
                code = self.fail[params["BlockIndex"]].pop(0)
                raise ClientError({"Error": {"Code": code, "Message": code},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutSnapshotBlock")
        if operation == "start_snapshot":
            return {"SnapshotId": "snap-0123456789abcdef0", "BlockSize": BLOCK}
        return {}

    def ops(self, operation: str) -> list[dict]:
        return [p for _, op, p in self.calls if op == operation]


def disk(tmp_path: Path) -> tuple[Path, bytes]:
    """MBR, a zero block, a data block, zeros, and a 1000-byte partial last block."""
    mbr = bytearray(BLOCK)
    mbr[510:512] = b"\x55\xaa"
    data = bytes(mbr) + bytes(BLOCK) + b"\x07" * BLOCK + bytes(2 * BLOCK) + b"tail" * 250
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    return path, data


def test_blocks_checksums_and_the_linear_aggregate_are_what_aws_expects(tmp_path):
    path, data = disk(tmp_path)
    cloud = RecordingCloud()
    assert Uploader(cloud, inspect_disk(path), workers=3).upload() == "snap-0123456789abcdef0"

    start = cloud.ops("start_snapshot")[0]
    assert start["VolumeSize"] == 1 and 60 <= start["Timeout"] <= 4320
    assert hashlib.sha256(data).hexdigest() in start["Description"] and len(start["Description"]) <= 255
    puts = sorted(cloud.ops("put_snapshot_block"), key=lambda p: p["BlockIndex"])
    assert [p["BlockIndex"] for p in puts] == [0, 2, 5], "zero blocks (1, 3, 4) are not sent"
    last = data[5 * BLOCK:].ljust(BLOCK, b"\0")
    assert puts[-1]["BlockData"] == last, "the partial last block is padded to the block size"
    digests = []
    for p in puts:
        assert p["DataLength"] == len(p["BlockData"]) == BLOCK and p["ChecksumAlgorithm"] == "SHA256"
        digest = hashlib.sha256(p["BlockData"]).digest()
        assert base64.b64decode(p["Checksum"]) == digest
        digests.append(digest)
    complete = cloud.ops("complete_snapshot")[0]
    assert complete["ChangedBlocksCount"] == 3
    assert (complete["ChecksumAlgorithm"], complete["ChecksumAggregationMethod"]) == ("SHA256", "LINEAR")
    assert base64.b64decode(complete["Checksum"]) == hashlib.sha256(b"".join(digests)).digest()
    seal = cloud.ops("create_tags")[0]
    assert seal["Tags"] == [{"Key": UPLOAD_TAG, "Value": SEALED}]
    assert [op for _, op, _ in cloud.calls][-2:] == ["complete_snapshot", "create_tags"]


def test_a_block_the_snapshot_does_not_know_yet_is_sent_again(tmp_path):
    """Right after StartSnapshot, AWS may answer ResourceNotFound for a while (eventual consistency)."""
    path, _ = disk(tmp_path)
    cloud = RecordingCloud(fail={2: ["ResourceNotFoundException", "RequestThrottledException"]})
    Uploader(cloud, inspect_disk(path), workers=2).upload()
    assert [p["BlockIndex"] for p in cloud.ops("put_snapshot_block")].count(2) == 3
    assert cloud.ops("complete_snapshot") and not cloud.ops("delete_snapshot")


def test_a_block_refused_for_good_deletes_the_unfinished_snapshot(tmp_path):
    path, _ = disk(tmp_path)
    cloud = RecordingCloud(fail={2: ["ValidationException"]})
    with pytest.raises(ClientError, match="ValidationException"):
        Uploader(cloud, inspect_disk(path), workers=2).upload()
    assert cloud.ops("delete_snapshot") == [{"SnapshotId": "snap-0123456789abcdef0"}]
    assert not cloud.ops("complete_snapshot") and not cloud.ops("create_tags")
