"""The embedded cloud's S3 (eucadb/cloud/local/s3.py) through plain boto3, as barman-cloud will use it.

One embedded cloud for the module (no images needed); the durability tests restart its API daemon.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent))
from localcloud import LocalCloud, wait_for  # noqa: E402

from eucadb.cloud.local.procs import PidRecord, stop  # noqa: E402

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3cloud():
    cloud = LocalCloud()
    try:
        cloud.up()
        yield cloud
    finally:
        cloud.down()
        try:
            wait_for(lambda: not cloud.leftovers(), 10, "no process of the test cloud left")
        finally:
            cloud.close()


def client(cloud: LocalCloud, region: str = "us-east-1"):
    return boto3.client("s3", endpoint_url=cloud.endpoint, region_name=region, **cloud.credentials)


@pytest.fixture
def s3(s3cloud):
    return client(s3cloud)


@pytest.fixture
def bucket(s3, request):
    name = "t-" + request.node.name.replace("_", "-")[:50].lower().strip("-")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def error(call, *args, **kwargs) -> tuple[str, int]:
    """(code, HTTP status) of the S3 error a call answers."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def api_pid(cloud: LocalCloud) -> int:
    return json.loads((cloud.home / "cloud" / "api.pid").read_text())["pid"]


def restart_api(cloud: LocalCloud) -> None:
    """Stop the API daemon (moto's state dies with it) and let `cloud up` start a new one."""
    stop(PidRecord(**json.loads((cloud.home / "cloud" / "api.pid").read_text())), 10)
    cloud.up()


def s3_files(cloud: LocalCloud, bucket: str) -> list[Path]:
    return [p for p in (cloud.data_dir / "s3" / "buckets" / bucket).rglob("*") if p.is_file()]


# buckets ---------------------------------------------------------------------------------------------
def test_bucket_lifecycle_and_errors(s3cloud, s3):
    assert s3.create_bucket(Bucket="life")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_bucket(Bucket="life")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert "life" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket="life")  # us-east-1's legacy answer: 200 again
    other = client(s3cloud, "eu-west-1")
    assert error(other.create_bucket, Bucket="life",
                 CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}) == ("BucketAlreadyOwnedByYou", 409)
    assert error(s3.create_bucket, Bucket="Bad_Name") == ("InvalidBucketName", 400)
    s3.put_object(Bucket="life", Key="k", Body=b"x")
    assert error(s3.delete_bucket, Bucket="life") == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="life", Key="k")
    assert s3.delete_bucket(Bucket="life")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(s3.head_bucket, Bucket="life") == ("404", 404)
    assert error(s3.list_objects_v2, Bucket="life") == ("NoSuchBucket", 404)
    assert error(s3.put_object, Bucket="life", Key="k", Body=b"x") == ("NoSuchBucket", 404)
    assert error(s3.delete_bucket, Bucket="life") == ("NoSuchBucket", 404)


def test_bucket_in_another_region(s3cloud):
    eu = client(s3cloud, "eu-west-1")
    eu.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert eu.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"
    assert eu.head_bucket(Bucket="eu-bucket")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
    eu.delete_bucket(Bucket="eu-bucket")


def test_bucket_policy_is_stored(s3, bucket):
    assert error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    assert error(s3.put_bucket_policy, Bucket=bucket, Policy="not json") == ("MalformedPolicy", 400)
    s3.delete_bucket_policy(Bucket=bucket)
    assert error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


# objects ---------------------------------------------------------------------------------------------
def test_object_round_trip(s3, bucket):
    data = bytes(range(256)) * 41
    put = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=data, ContentType="application/x-test",
                        Metadata={"origin": "test", "with_underscore": "yes"}, CacheControl="no-cache")
    md5 = hashlib.md5(data).hexdigest()
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert put["ETag"] == f'"{md5}"' and put["ChecksumCRC32"] == crc
    got = s3.get_object(Bucket=bucket, Key="dir/obj.bin", ChecksumMode="ENABLED")  # botocore validates the CRC
    assert got["Body"].read() == data
    assert (got["ETag"], got["ContentType"], got["CacheControl"], got["ContentLength"]) == \
        (f'"{md5}"', "application/x-test", "no-cache", len(data))
    assert got["Metadata"] == {"origin": "test", "with_underscore": "yes"}
    assert got["ChecksumCRC32"] == crc
    head = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == f'"{md5}"' and "ChecksumCRC32" not in head
    for spec, want in (("bytes=0-9", data[:10]), ("bytes=100-", data[100:]), ("bytes=-7", data[-7:]),
                       ("bytes=10000-99999", data[10000:])):
        part = s3.get_object(Bucket=bucket, Key="dir/obj.bin", Range=spec)
        assert part["Body"].read() == want and part["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert part["ContentRange"].startswith("bytes ") and part["ContentRange"].endswith(f"/{len(data)}")
    assert error(s3.get_object, Bucket=bucket, Key="dir/obj.bin", Range=f"bytes={len(data)}-") == ("InvalidRange", 416)
    assert error(s3.get_object, Bucket=bucket, Key="dir/obj.bin", IfNoneMatch=md5) == ("304", 304)
    assert error(s3.get_object, Bucket=bucket, Key="dir/obj.bin", IfMatch="other") == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=b"replaced")
    assert s3.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read() == b"replaced"
    assert s3.delete_object(Bucket=bucket, Key="dir/obj.bin")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="dir/obj.bin")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(s3.get_object, Bucket=bucket, Key="dir/obj.bin") == ("NoSuchKey", 404)
    assert error(s3.head_object, Bucket=bucket, Key="dir/obj.bin") == ("404", 404)


def test_empty_object_and_odd_keys(s3cloud, s3, bucket):
    keys = ["../../escape", "/leading", "a//b", "ünï cødé +%&?=#", "x" * 1024]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)
    for key in keys:
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == b"" and got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    assert error(s3.put_object, Bucket=bucket, Key="x" * 1025, Body=b"") == ("KeyTooLongError", 400)
    root = (s3cloud.data_dir / "s3" / "buckets" / bucket).resolve()
    assert all(p.resolve().is_relative_to(root) for p in s3_files(s3cloud, bucket))
    assert not (s3cloud.data_dir / "s3" / "escape").exists()


def test_bad_content_md5_is_bad_digest_and_stores_nothing(s3cloud, s3, bucket):
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    assert error(s3.put_object, Bucket=bucket, Key="k", Body=b"payload", ContentMD5=wrong) == ("BadDigest", 400)
    assert error(s3.head_object, Bucket=bucket, Key="k") == ("404", 404)
    assert [p.name for p in s3_files(s3cloud, bucket)] == ["bucket.json"]
    assert not list((s3cloud.data_dir / "s3" / "tmp").iterdir())
    assert error(s3.put_object, Bucket=bucket, Key="k", Body=b"payload", ContentMD5="not-base64") == \
        ("InvalidDigest", 400)
    right = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ContentMD5=right)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"


def test_wrong_checksum_is_bad_digest(s3, bucket):
    assert error(s3.put_object, Bucket=bucket, Key="k", Body=b"payload", ChecksumCRC32="AAAAAA==") == \
        ("BadDigest", 400)
    assert error(s3.head_object, Bucket=bucket, Key="k") == ("404", 404)


def test_body_changed_after_signing_is_sha256_mismatch(s3cloud, bucket):
    s3 = client(s3cloud)

    def corrupt(request, **kwargs):  # the bytes change in transit; the signed SHA-256 no longer holds
        request.body = b"PAYLOAD"

    s3.meta.events.register("before-send.s3.PutObject", corrupt)
    assert error(s3.put_object, Bucket=bucket, Key="k", Body=b"payload") == ("XAmzContentSHA256Mismatch", 400)
    assert error(client(s3cloud).head_object, Bucket=bucket, Key="k") == ("404", 404)


def test_aws_chunked_body_with_checksum_trailer(s3cloud, bucket):
    """What botocore sends over TLS (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER, CRC32 trailer),
    made to happen on the loopback's plain HTTP."""
    s3 = client(s3cloud)
    sent = {}

    def use_trailer(params, **kwargs):
        params["context"]["checksum"]["request_algorithm"]["in"] = "trailer"

    s3.meta.events.register("before-call.s3.PutObject", use_trailer)
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **kw: sent.update(request.headers))
    data = bytes(range(256)) * 3000
    put = s3.put_object(Bucket=bucket, Key="chunked", Body=io.BytesIO(data))
    assert sent["Content-Encoding"] == b"aws-chunked" and sent["X-Amz-Trailer"] == b"x-amz-checksum-crc32"
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ContentEncoding" not in got  # aws-chunked is framing, not stored


class _DeclaredPayload(S3SigV4Auth):
    """Signs the body digest the request declares (UNSIGNED-PAYLOAD, STREAMING-…), as streaming clients do."""

    def payload(self, request: AWSRequest) -> str:
        return request.context["declared"]


def _signed(cloud: LocalCloud, method: str, path: str, headers: dict) -> dict:
    """`headers` plus a SigV4 signature with the cloud's key."""
    headers = dict(headers)
    declared = headers.pop("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    request = AWSRequest(method=method, url=cloud.endpoint + path, headers=headers)
    request.context["declared"] = declared
    creds = cloud.credentials
    _DeclaredPayload(Credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]), "s3",
                     "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _raw_put(cloud: LocalCloud, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    url = urlsplit(cloud.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("PUT", path, body, _signed(cloud, "PUT", path, {"Content-Length": str(len(body)), **headers}))
    reply = conn.getresponse()
    return reply.status, reply.read()


def test_aws_chunked_bad_trailer_or_framing_stores_nothing(s3cloud, s3, bucket):
    data = b"hello world"
    headers = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": str(len(data))}
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    frame = lambda crc: b"b\r\n" + data + b"\r\n0\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n"  # noqa: E731
    status, body = _raw_put(s3cloud, f"/{bucket}/bad", headers, frame("AAAAAA=="))
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, body = _raw_put(s3cloud, f"/{bucket}/bad", headers, b"zz\r\n" + data)
    assert status == 400 and b"<Code>IncompleteBody</Code>" in body
    assert error(s3.head_object, Bucket=bucket, Key="bad") == ("404", 404)
    assert _raw_put(s3cloud, f"/{bucket}/good", headers, frame(good))[0] == 200
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data


def test_short_body_is_incomplete(s3cloud, bucket):
    url = urlsplit(s3cloud.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("PUT", f"/{bucket}/short")
    for name, value in _signed(s3cloud, "PUT", f"/{bucket}/short", {"Content-Length": "100"}).items():
        conn.putheader(name, value)
    conn.endheaders(b"only 17 bytes....")
    conn.sock.shutdown(1)  # the client gives up mid-body
    assert b"<Code>IncompleteBody</Code>" in conn.getresponse().read()
    assert error(client(s3cloud).head_object, Bucket=bucket, Key="short") == ("404", 404)


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == b"data" and got["Metadata"] == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"b": "2"}
    assert error(s3.copy_object, Bucket=bucket, Key="src", CopySource=f"{bucket}/src") == ("InvalidRequest", 400)
    assert error(s3.copy_object, Bucket=bucket, Key="x", CopySource=f"{bucket}/none") == ("NoSuchKey", 404)


# listing and deleting --------------------------------------------------------------------------------
def test_list_objects_v2_prefix_delimiter_and_pages(s3, bucket):
    keys = ["a/1", "a/2", "a/3/x", "a/3/y", "b/1", "c", "d+e f"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    everything = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything["Contents"]] == sorted(keys) and everything["KeyCount"] == len(keys)
    assert all(o["Size"] == len(o["Key"]) for o in everything["Contents"])
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in top["Contents"]] == ["c", "d+e f"]
    under_a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/3/"]
    seen, token, pages = [], None, 0
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=1,
                                  **({"ContinuationToken": token} if token else {}))
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert page["KeyCount"] <= 1
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == ["a/", "b/", "c", "d+e f"] and pages == 4
    paged = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={
        "PageSize": 2}) for o in p["Contents"]]
    assert paged == sorted(keys)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, StartAfter="a/3/x")["Contents"]] == \
        ["a/3/y", "b/1", "c", "d+e f"]
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket, Prefix="a/")["Contents"]] == \
        ["a/1", "a/2", "a/3/x", "a/3/y"]
    assert error(s3.list_objects_v2, Bucket=bucket, ContinuationToken="%%%") == ("InvalidArgument", 400)


def test_delete_objects(s3, bucket):
    for key in ("x", "y", "z"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x"}, {"Key": "y"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["missing", "x", "y"] and "Errors" not in result
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "z"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


# multipart -------------------------------------------------------------------------------------------
def test_multipart_upload(s3, bucket):
    parts_data = [b"a" * (5 * MiB), b"b" * (5 * MiB), b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"kind": "multi"},
                                        ChecksumAlgorithm="CRC32")["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    parts = []
    for number, data in enumerate(parts_data, 1):
        reply = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data,
                               ChecksumAlgorithm="CRC32")
        assert reply["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        parts.append({"PartNumber": number, "ETag": reply["ETag"], "ChecksumCRC32": reply["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MiB), (2, 5 * MiB), (3, 4)]
    assert error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                 MultipartUpload={"Parts": [parts[1], parts[0]]}) == ("InvalidPartOrder", 400)
    assert error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                 MultipartUpload={"Parts": [{**parts[0], "ETag": '"0123"'}]}) == ("InvalidPart", 400)
    assert error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                 MultipartUpload={"Parts": [{"PartNumber": 9, "ETag": parts[0]["ETag"]}]}) == ("InvalidPart", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    crcs = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in parts)
    assert done["ChecksumCRC32"] == base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode() + "-3"
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts_data) and got["Metadata"] == {"kind": "multi"}
    assert got["ETag"] == done["ETag"] and got["ChecksumCRC32"] == done["ChecksumCRC32"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert error(s3.upload_part, Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x") == \
        ("NoSuchUpload", 404)


def test_multipart_small_part_abort_and_bad_ids(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n,
                                                      Body=b"small")["ETag"]} for n in (1, 2)]
    assert error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                 MultipartUpload={"Parts": parts}) == ("EntityTooSmall", 400)
    assert error(s3.upload_part, Bucket=bucket, Key="mp", UploadId=upload, PartNumber=10001, Body=b"x") == \
        ("InvalidArgument", 400)
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(s3.abort_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload) == ("NoSuchUpload", 404)
    assert error(s3.list_parts, Bucket=bucket, Key="mp", UploadId="../../../etc") == ("NoSuchUpload", 404)
    assert error(s3.head_object, Bucket=bucket, Key="mp") == ("404", 404)


def test_upload_fileobj_and_download_as_barman_does(s3, bucket):
    data = bytes(range(256)) * (40 * 1024 + 3)  # ~10 MiB: boto3 goes multipart above 8 MiB
    s3.upload_fileobj(io.BytesIO(data), bucket, "wals/000000010000000000000001",
                      ExtraArgs={"ServerSideEncryption": "AES256", "Tagging": "a=1&b=2"})
    head = s3.head_object(Bucket=bucket, Key="wals/000000010000000000000001")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-2"')
    assert head["ServerSideEncryption"] == "AES256" and head["TagCount"] == 2
    out = io.BytesIO()
    s3.download_fileobj(bucket, "wals/000000010000000000000001", out)
    assert out.getvalue() == data
    creds = s3._request_signer._credentials
    resource = boto3.resource("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1",
                              aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    assert resource.Object(bucket, "wals/000000010000000000000001").get()["Body"].read() == data


# durability ------------------------------------------------------------------------------------------
def test_objects_survive_an_api_restart(s3cloud):
    s3 = client(s3cloud)
    s3.create_bucket(Bucket="durable")
    s3.put_object(Bucket="durable", Key="k", Body=b"kept", Metadata={"m": "v"})
    s3.put_bucket_policy(Bucket="durable", Policy='{"Version": "2012-10-17", "Statement": []}')
    old = api_pid(s3cloud)
    restart_api(s3cloud)
    assert api_pid(s3cloud) != old
    s3 = client(s3cloud)
    got = s3.get_object(Bucket="durable", Key="k")
    assert got["Body"].read() == b"kept" and got["Metadata"] == {"m": "v"}
    assert json.loads(s3.get_bucket_policy(Bucket="durable")["Policy"])["Statement"] == []
    s3.delete_object(Bucket="durable", Key="k")
    s3.delete_bucket(Bucket="durable")


class Generated(io.RawIOBase):
    """`size` bytes of deterministic data made on the fly (each MiB differs), hashed as read."""

    def __init__(self, size: int):
        self.size, self.pos, self.sha = size, 0, hashlib.sha256()
        self.base = hashlib.sha256(b"seed").digest() * (MiB // 32)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            block, offset = divmod(self.pos + len(out), MiB)
            chunk = block.to_bytes(8, "big") + self.base[8:]
            out += chunk[offset:offset + n - len(out)]
        buffer[:n] = out
        self.sha.update(out)
        self.pos += n
        return n


class PeakRss:
    """Samples a process's VmRSS while a transfer runs; VmHWM is the kernel's own peak."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(name)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.field("VmRSS"))

    def __enter__(self) -> "PeakRss":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()


def _download_sha(s3, bucket: str, key: str) -> tuple[str, float]:
    sha, start = hashlib.sha256(), time.monotonic()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        sha.update(chunk)
    return sha.hexdigest(), time.monotonic() - start


@pytest.mark.slow
def test_one_gib_streams_through_and_survives_a_restart(s3cloud, tmp_path):
    size = 1 << 30
    s3 = client(s3cloud)
    s3.create_bucket(Bucket="big")
    figures = {}
    single = tmp_path / "single.bin"
    source = Generated(size)
    with open(single, "wb") as f:
        for chunk in iter(lambda: source.read(8 * MiB), b""):
            f.write(chunk)
    want = source.sha.hexdigest()
    with PeakRss(api_pid(s3cloud)) as rss:
        figures["rss_before_MB"] = rss.field("VmRSS") / MiB
        start = time.monotonic()
        with open(single, "rb") as f:
            s3.put_object(Bucket="big", Key="single", Body=f)
        figures["put_single_MBps"] = size / MiB / (time.monotonic() - start)
        single.unlink()
        start = time.monotonic()
        reader = Generated(size)
        s3.upload_fileobj(io.BufferedReader(reader, MiB), "big", "multi")
        figures["put_multipart_MBps"] = size / MiB / (time.monotonic() - start)
        assert reader.sha.hexdigest() == want
        sha, took = _download_sha(s3, "big", "single")
        assert sha == want
        figures["get_MBps"] = size / MiB / took
        figures["peak_rss_MB"] = rss.peak / MiB
        figures["vmhwm_MB"] = rss.field("VmHWM") / MiB
    restart_api(s3cloud)
    s3 = client(s3cloud)
    with PeakRss(api_pid(s3cloud)) as rss:
        for key in ("single", "multi"):
            sha, took = _download_sha(s3, "big", key)
            assert sha == want, key
        figures["get_after_restart_MBps"] = size / MiB / took
        figures["peak_rss_after_restart_MB"] = rss.peak / MiB
    print("1 GiB figures:", {k: round(v, 1) for k, v in figures.items()})
    assert figures["vmhwm_MB"] < 300 and figures["peak_rss_after_restart_MB"] < 300, figures
    assert figures["vmhwm_MB"] - figures["rss_before_MB"] < 100, figures  # moto alone is ~200 MB
    s3.delete_objects(Bucket="big", Delete={"Objects": [{"Key": "single"}, {"Key": "multi"}]})
    s3.delete_bucket(Bucket="big")
