"""The embedded cloud authenticates like a cloud: only keys it issued get through, with AWS's own
errors otherwise, and a secret's resource policy decides who reads it (eucadb's key-delivery policy:
the instance role only, eucadb's root key included in the refusal)."""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError
from localcloud import RUNTIME_CACHE

from eucadb.workflow.steps.instance_role import TRUST
from eucadb.workflow.steps.key_delivery import resource_policy

pytestmark = pytest.mark.slow
UNKNOWN = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40}
CALLS = {  # service -> a call eucadb makes, and what AWS answers an unknown key / a bad signature
    "ec2": (lambda c: c.describe_instances(), ("AuthFailure", 401), ("SignatureDoesNotMatch", 403)),
    "secretsmanager": (lambda c: c.list_secrets(),
                       ("UnrecognizedClientException", 400), ("InvalidSignatureException", 400)),
    "iam": (lambda c: c.list_users(), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    "sts": (lambda c: c.get_caller_identity(), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    "autoscaling": (lambda c: c.describe_auto_scaling_groups(), ("InvalidClientTokenId", 403),
                    ("SignatureDoesNotMatch", 403)),
    "s3": (lambda c: c.list_buckets(), ("InvalidAccessKeyId", 403), ("SignatureDoesNotMatch", 403)),
}


def _refusal(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("service", sorted(CALLS))
def test_only_issued_keys_get_through(cloud, service):
    call, unknown, bad_signature = CALLS[service]
    call(cloud.client(service))  # the issued root key works
    assert _refusal(lambda: call(cloud.client(service, **UNKNOWN))) == unknown
    forged = {**cloud.credentials, "aws_secret_access_key": "not-the-secret"}
    assert _refusal(lambda: call(cloud.client(service, **forged))) == bad_signature


def test_an_unsigned_request_is_refused(cloud):
    request = urllib.request.Request(cloud.endpoint + "/", data=b"Action=DescribeInstances&Version=2016-11-15",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403 and b"MissingAuthenticationToken" in caught.value.read()


def test_root_credentials_are_private(cloud):
    for path in (cloud.home / "eucadb.yaml", cloud.home / "cloud" / "root-credentials.json"):
        assert os.stat(path).st_mode & 0o077 == 0, f"{path} is readable by others"
    assert cloud.client("sts").get_caller_identity()["Arn"].endswith(":user/eucadb/eucadb-root")


def _role(cloud, name: str) -> str:
    return cloud.client("iam").create_role(RoleName=name, Path=f"/eucadb/{name}/",
                                           AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]


def _session(cloud, role_arn: str) -> dict[str, str]:
    return cloud.role_session(role_arn)


def test_the_secret_policy_eucadb_writes_is_enforced(cloud):
    tag = uuid.uuid4().hex[:8]
    own, other = _role(cloud, f"db-{tag}"), _role(cloud, f"other-{tag}")
    name = f"eucadb/{tag}/server-key"
    for role in (f"db-{tag}", f"other-{tag}"):  # both may read it by their identity policy...
        cloud.client("iam").put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": f"arn:aws:secretsmanager:*:*:secret:{name}-*"}]}))
    root = cloud.client("secretsmanager")
    arn = root.create_secret(Name=name, SecretString="the key")["ARN"]
    assert root.get_secret_value(SecretId=name)["SecretString"] == "the key", "no policy yet"
    root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(resource_policy(own)))

    mine = cloud.client("secretsmanager", **_session(cloud, own))
    assert mine.get_secret_value(SecretId=name)["SecretString"] == "the key"
    assert mine.get_secret_value(SecretId=arn)["SecretString"] == "the key"
    for caller in (root, cloud.client("secretsmanager", **_session(cloud, other))):  # ...the resource policy denies
        for secret_id in (name, arn):
            assert _refusal(lambda: caller.get_secret_value(SecretId=secret_id)) == ("AccessDeniedException", 400)
    root.describe_secret(SecretId=name)  # the policy denies reading the value only


def test_a_session_key_needs_its_own_token(cloud):
    session = _session(cloud, _role(cloud, f"tok-{uuid.uuid4().hex[:8]}"))
    cloud.client("sts", **session).get_caller_identity()
    without = {k: v for k, v in session.items() if k != "aws_session_token"}
    assert _refusal(lambda: cloud.client("sts", **without).get_caller_identity())[0] == "InvalidClientTokenId"
    wrong = {**session, "aws_session_token": session["aws_session_token"][:-4] + "AAAA"}
    assert _refusal(lambda: cloud.client("sts", **wrong).get_caller_identity())[0] == "InvalidClientTokenId"


ATTACKER = """
import json, sys, boto3
from botocore.exceptions import ClientError
endpoint, home = sys.argv[1], sys.argv[2]
found = {}
for path in (home + "/eucadb.yaml", home + "/cloud/root-credentials.json"):
    try:
        open(path).read(); found[path] = "read"
    except OSError as exc:
        found[path] = type(exc).__name__
def attempt(service, call):
    client = boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="guess")
    try:
        call(client); return "succeeded"
    except ClientError as exc:
        return exc.response["Error"]["Code"]
found["DescribeInstances"] = attempt("ec2", lambda c: c.describe_instances())
found["GetSecretValue"] = attempt("secretsmanager", lambda c: c.get_secret_value(SecretId=sys.argv[3]))
print(json.dumps(found))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_another_local_user_reaches_nothing(cloud, tmp_path):
    name = f"eucadb/{uuid.uuid4().hex[:8]}/server-key"
    cloud.client("secretsmanager").create_secret(Name=name, SecretString="the key")
    nobody = pwd.getpwnam("nobody")
    # our interpreter lives under /root (0700): run the image runtime, boto3 included, as nobody
    python = next(RUNTIME_CACHE.glob("py*/.complete")).parent / "bin" / "python"
    done = subprocess.run([str(python), "-c", ATTACKER, cloud.endpoint, str(cloud.home), name],
                          capture_output=True, text=True, timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"},
                          preexec_fn=lambda: (os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found == {str(cloud.home / "eucadb.yaml"): "PermissionError",
                     str(cloud.home / "cloud" / "root-credentials.json"): "PermissionError",
                     "DescribeInstances": "AuthFailure", "GetSecretValue": "UnrecognizedClientException"}
