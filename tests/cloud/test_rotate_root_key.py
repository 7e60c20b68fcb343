"""`eucadb cloud rotate-root-key`: the old root key is refused with AWS's codes, the new one works and
is kept 0600, the realizer runs on it, a long-running holder of the old key (as `eucadb serve` is)
switches to the new key once by itself, and a second rotation works as the first."""
from __future__ import annotations

import os

import pytest
import yaml
from botocore.exceptions import ClientError

from eucadb.cloud.client import CloudClients
from eucadb.config import load

pytestmark = pytest.mark.slow
REFUSED = {"ec2": (lambda c: c.describe_instances(), "AuthFailure"),
           "iam": (lambda c: c.list_users(), "InvalidClientTokenId"),
           "secretsmanager": (lambda c: c.list_secrets(), "UnrecognizedClientException"),
           "s3": (lambda c: c.list_buckets(), "InvalidAccessKeyId")}


def _code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def _realizer_pid(cloud) -> int:
    return next(d["pid"] for d in cloud.status()["daemons"] if d["name"] == "realizer" and d["running"])


def _rotate(cloud, serving: CloudClients) -> None:
    before, realizer = cloud.credentials, _realizer_pid(cloud)
    out = cloud.cli("cloud", "rotate-root-key").stdout
    after = cloud.credentials
    assert after["aws_access_key_id"] != before["aws_access_key_id"] and after["aws_access_key_id"] in out
    for service, (call, code) in REFUSED.items():
        assert _code(lambda: call(cloud.client(service, **before))) == code, service
        call(cloud.client(service))  # the new key works
    keys = cloud.client("iam").list_access_keys(UserName="eucadb-root")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [after["aws_access_key_id"]]
    for path in (cloud.home / "eucadb.yaml", cloud.home / "cloud" / "root-credentials.json"):
        assert os.stat(path).st_mode & 0o777 == 0o600, path
    assert _realizer_pid(cloud) != realizer  # restarted on the new key
    serving.call("ec2", "describe_instances")  # built on the old key: switches once, by itself
    assert serving.config["cloud.access_key_id"] == after["aws_access_key_id"]


def test_rotation_retires_the_old_key_and_a_running_holder_follows(cloud, tmp_path):
    serving = CloudClients(load(cloud.home / "eucadb.yaml", env=cloud.env))
    serving.call("ec2", "describe_instances")
    old = cloud.credentials
    _rotate(cloud, serving)
    _rotate(cloud, serving)  # and again: the second key is replaced like the first

    # narrow: a key the config itself still names is not "rotated", so nothing is retried
    stale = tmp_path / "eucadb.yaml"
    data = yaml.safe_load((cloud.home / "eucadb.yaml").read_text())
    data["cloud"].update(access_key_id=old["aws_access_key_id"], secret_access_key=old["aws_secret_access_key"])
    stale.write_text(yaml.safe_dump(data))
    holder = CloudClients(load(stale, env=cloud.env))
    assert _code(lambda: holder.call("ec2", "describe_instances")) == "AuthFailure"
    assert holder.config["cloud.access_key_id"] == old["aws_access_key_id"]
