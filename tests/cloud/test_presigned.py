"""Presigned S3 URLs work against the embedded cloud as against S3: query-string SigV4 is accepted
and authorized as its signer; a tampered, expired, over-a-week or unauthorized URL gets S3's XML error."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.config import Config

pytestmark = pytest.mark.slow
V4 = Config(signature_version="s3v4")  # boto3 presigns with SigV2 unless told; AWS deprecates SigV2


def _open(url: str, method: str = "GET", data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=10) as reply:
        return reply.read()


def _error(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, str, str]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        _open(url, method, data)
    root = ET.fromstring(caught.value.read())
    return caught.value.code, root.findtext("Code") or "", root.findtext("Message") or ""


@pytest.fixture(scope="module")
def bucket(cloud):
    name = f"presign-{uuid.uuid4().hex[:8]}"
    cloud.client("s3").create_bucket(Bucket=name)
    cloud.client("s3").put_object(Bucket=name, Key="dir/a b.txt", Body=b"hello")
    return name


def test_presigned_get_and_put_work(cloud, bucket):
    s3 = cloud.client("s3", V4)
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in get and _open(get) == b"hello"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/new.bin"}, ExpiresIn=300)
    _open(put, "PUT", b"uploaded")
    assert s3.get_object(Bucket=bucket, Key="up/new.bin")["Body"].read() == b"uploaded"


def test_a_tampered_url_is_refused(cloud, bucket):
    s3 = cloud.client("s3", V4)
    cloud.client("s3").put_object(Bucket=bucket, Key="dir/other.txt", Body=b"secret")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"}, ExpiresIn=300)
    assert _error(url.replace("a%20b.txt", "other.txt"))[:2] == (403, "SignatureDoesNotMatch")
    assert _error(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"))[:2] == (403, "SignatureDoesNotMatch")
    assert _error(url, "PUT", b"x")[:2] == (403, "SignatureDoesNotMatch")  # signed for GET
    unknown = url.replace(cloud.credentials["aws_access_key_id"], "AKIAIOSFODNN7EXAMPLE")
    assert _error(unknown)[:2] == (403, "InvalidAccessKeyId")


def test_an_expired_url_is_refused(cloud, bucket):
    url = cloud.client("s3", V4).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"},
                                                    ExpiresIn=1)
    time.sleep(2.1)  # past its lifetime (not a latency assertion)
    assert _error(url) == (403, "AccessDenied", "Request has expired")


def test_a_url_valid_for_more_than_a_week_is_refused(cloud, bucket):
    url = cloud.client("s3", V4).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"},
                                                    ExpiresIn=7 * 24 * 3600 + 1)
    status, code, message = _error(url)
    assert (status, code) == (400, "AuthorizationQueryParametersError") and "604800" in message


def test_a_url_is_authorized_as_its_signer(cloud, bucket):
    iam, name = cloud.client("iam"), f"presigner-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    signer = cloud.client("s3", V4, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"}, ExpiresIn=300)
    status, code, message = _error(url)  # no policy allows it anything
    assert (status, code) == (403, "AccessDenied") and f"user/{name} is not authorized to perform: s3:GetObject" in message
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": f"arn:aws:s3:::{bucket}/dir/*"}]}))
    assert _open(url) == b"hello"  # the same URL, now that its signer may read
    put = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "dir/x"}, ExpiresIn=300)
    assert _error(put, "PUT", b"x")[:2] == (403, "AccessDenied")
