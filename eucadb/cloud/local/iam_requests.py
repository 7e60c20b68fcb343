"""What a request asks, in IAM's terms: the action, the ARN of each resource it touches (built as AWS
builds it), the condition keys the request carries, and the resource policy that applies.

Per service, as AWS authorizes it:
- EC2: `ec2:<Action>`; AttachVolume/DetachVolume on the volume *and* the instance (both must be
  allowed), instance/volume/snapshot actions on their ARNs (a snapshot's ARN has no account), with
  `aws:ResourceTag/K` and `ec2:ResourceTag/K` from the resource's tags; every other action on "*".
- S3 (path-style REST): the action S3 checks for the method and subresource (HeadBucket is
  ListBucket, a multipart upload's steps are PutObject, DeleteObjects is DeleteObject per key,
  CopyObject is PutObject on the target and GetObject on the source) on
  `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`, with `s3:prefix`/`s3:delimiter`/`s3:max-keys`
  for a listing; the bucket policy is the resource policy.
- Secrets Manager: `secretsmanager:<Op>` on the secret's ARN, its tags, its resource policy.
- IAM: on the role/user/instance profile/policy the request names; STS AssumeRole on the role, with
  the role's trust policy (AssumeRolePolicyDocument) as the resource policy that must allow it;
  GetCallerIdentity needs no permission (as on AWS); AutoScaling and the rest on "*".
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import parse_qs, unquote

from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from eucadb.cloud.local.gateway import read_body
from eucadb.cloud.local.s3_http import Request as S3Request

PARTITION = "aws"
MAX_DELETE_BODY = 2 << 20  # DeleteObjects: 1,000 keys of 1 KiB each and their XML
IAM_SERVICE_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}  # signing name -> IAM prefix


@dataclass(frozen=True)
class Check:
    """One authorization the request needs: all of a request's checks must pass."""
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    resource_policy: str | None = None
    trust: bool = False  # resource_policy is a role's trust policy: it must allow (authorize.py)


@dataclass(frozen=True)
class Asked:
    service: str  # the signing name (protocol and error wording follow it)
    checks: tuple[Check, ...]


def _tag_context(service: str, tags: Mapping[str, str]) -> dict[str, str]:
    context = {}
    for key, value in tags.items():
        context[f"aws:resourcetag/{key.lower()}"] = value
        context[f"{service}:resourcetag/{key.lower()}"] = value
    return context


# EC2 ---------------------------------------------------------------------------------------------
EC2_RESOURCES: dict[str, tuple[tuple[str, str], ...]] = {  # action -> (ARN kind, parameter) it acts on
    "AttachVolume": (("volume", "VolumeId"), ("instance", "InstanceId")),
    "DetachVolume": (("volume", "VolumeId"), ("instance", "InstanceId")),
    "DeleteVolume": (("volume", "VolumeId"),),
    "CreateSnapshot": (("volume", "VolumeId"),),
    "DeleteSnapshot": (("snapshot", "SnapshotId"),),
    **{name: (("instance", "InstanceId"),) for name in (
        "StartInstances", "StopInstances", "TerminateInstances", "RebootInstances",
        "DescribeInstanceAttribute", "ModifyInstanceAttribute", "GetConsoleOutput")},
}


def _param_values(params: Mapping[str, str], name: str) -> list[str]:
    if name in params:
        return [params[name]]
    listed = sorted((k for k in params if k.startswith(name + ".") and k.rsplit(".", 1)[1].isdigit()),
                    key=lambda k: int(k.rsplit(".", 1)[1]))
    return [params[k] for k in listed]


def _ec2_tags(region: str, account: str, ident: str) -> dict[str, str]:
    try:
        return dict(ec2_backends[account][region].tags.get(ident) or {})  # .get: tags is a defaultdict
    except KeyError:
        return {}


def _ec2(params: Mapping[str, str], region: str, account: str) -> list[Check]:
    name = params.get("Action", "")
    action = f"ec2:{name}"
    wanted = EC2_RESOURCES.get(name)
    if not wanted:
        return [Check(action, "*")]
    checks = []
    for kind, param in wanted:
        for ident in _param_values(params, param):
            owner = "" if kind == "snapshot" else account
            arn = f"arn:{PARTITION}:ec2:{region}:{owner}:{kind}/{ident}"
            checks.append(Check(action, arn, _tag_context("ec2", _ec2_tags(region, account, ident))))
    return checks or [Check(action, "*")]


# IAM / STS / others on the Query protocol --------------------------------------------------------
IAM_RESOURCES: tuple[tuple[str, str], ...] = (  # parameter -> what it names, most specific first
    ("RoleName", "role"), ("UserName", "user"), ("InstanceProfileName", "instance-profile"),
    ("GroupName", "group"))


def _iam_arn(kind: str, name: str, account: str, path: str = "/") -> str:
    """The named entity's ARN; one that does not exist yet (CreateRole …) with the Path it asks for."""
    iam = iam_backends[account][PARTITION]
    found = {"role": lambda: next((r for r in list(iam.roles.values()) if r.name == name), None),
             "user": lambda: iam.users.get(name),
             "instance-profile": lambda: iam.instance_profiles.get(name),
             "group": lambda: iam.groups.get(name)}[kind]()
    return getattr(found, "arn", None) or f"arn:{PARTITION}:iam::{account}:{kind}{path}{name}"


def _assume_role(action: str, role_arn: str, account: str) -> Check:
    """AssumeRole on the role, whose trust policy must allow the caller (a missing role trusts no one).
    Found by name, as STS does: a role ARN given without its path still names the role."""
    name = role_arn.rsplit("/", 1)[-1]
    role = next((r for r in list(iam_backends[account][PARTITION].roles.values()) if r.name == name), None) \
        if role_arn.startswith(f"arn:{PARTITION}:iam::{account}:role/") else None
    return Check(action, role_arn or "*", resource_policy=getattr(role, "assume_role_policy_document", None)
                 or _TRUSTS_NO_ONE, trust=True)


_TRUSTS_NO_ONE = json.dumps({"Version": "2012-10-17", "Statement": []})


def _query(service: str, params: Mapping[str, str], account: str) -> list[Check]:
    name = params.get("Action", "")
    action = f"{IAM_SERVICE_PREFIX.get(service, service)}:{name}"
    if service == "sts":
        if name == "GetCallerIdentity":
            return []
        if name == "AssumeRole":
            return [_assume_role(action, params.get("RoleArn") or "", account)]
        return [Check(action, params.get("RoleArn") or "*")]
    if service == "iam":
        for param, kind in IAM_RESOURCES:
            if params.get(param):
                return [Check(action, _iam_arn(kind, params[param], account, params.get("Path") or "/"))]
        if params.get("PolicyArn"):
            return [Check(action, params["PolicyArn"])]
    return [Check(action, "*")]


# Secrets Manager and other JSON services ---------------------------------------------------------
def _json(service: str, target: str, body: bytes, region: str, account: str) -> list[Check]:
    operation = target.rsplit(".", 1)[-1]
    action = f"{IAM_SERVICE_PREFIX.get(service, service)}:{operation}"
    if service != "secretsmanager":
        return [Check(action, "*")]
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    secret_id = request.get("SecretId") if isinstance(request, dict) else None
    if not isinstance(secret_id, str):
        name = request.get("Name") if isinstance(request, dict) else None
        return [Check(action, f"arn:{PARTITION}:secretsmanager:{region}:{account}:secret:{name}"
                      if isinstance(name, str) else "*")]
    try:
        secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    except KeyError:
        secret = None
    if secret is None:
        arn = secret_id if secret_id.startswith("arn:") else \
            f"arn:{PARTITION}:secretsmanager:{region}:{account}:secret:{secret_id}"
        return [Check(action, arn)]
    tags = {t["Key"]: t["Value"] for t in (secret.tags or []) if "Key" in t}
    return [Check(action, secret.arn, _tag_context("secretsmanager", tags), secret.policy)]


# S3 ------------------------------------------------------------------------------------------------
S3_ACTIONS: dict[tuple[str, str, str | None], str] = {  # (method, kind, subresource) -> IAM action
    ("GET", "service", None): "ListAllMyBuckets",
    ("PUT", "bucket", None): "CreateBucket", ("HEAD", "bucket", None): "ListBucket",
    ("DELETE", "bucket", None): "DeleteBucket", ("GET", "bucket", None): "ListBucket",
    ("GET", "bucket", "location"): "GetBucketLocation",
    ("GET", "bucket", "uploads"): "ListBucketMultipartUploads",
    ("GET", "bucket", "versions"): "ListBucketVersions",
    ("PUT", "bucket", "policy"): "PutBucketPolicy", ("GET", "bucket", "policy"): "GetBucketPolicy",
    ("DELETE", "bucket", "policy"): "DeleteBucketPolicy",
    ("PUT", "object", None): "PutObject", ("GET", "object", None): "GetObject",
    ("HEAD", "object", None): "GetObject", ("DELETE", "object", None): "DeleteObject",
    ("POST", "object", "uploads"): "PutObject", ("PUT", "object", "uploadId"): "PutObject",
    ("POST", "object", "uploadId"): "PutObject", ("DELETE", "object", "uploadId"): "AbortMultipartUpload",
    ("GET", "object", "uploadId"): "ListMultipartUploadParts",
}
S3_SUBRESOURCES = ("uploadId", "uploads", "delete", "policy", "location", "versions")
UNMAPPED = "s3:UnmappedRequest"  # a request S3 would not answer: only a policy allowing s3:* passes
LIST_KEYS = ("prefix", "delimiter", "max-keys")


def _deleted_keys(environ: dict) -> list[str] | None:
    """The keys a DeleteObjects body names; None if it is too big or not XML (S3 answers it)."""
    if int(environ.get("CONTENT_LENGTH") or 0) > MAX_DELETE_BODY:
        return None
    try:
        root = ET.fromstring(read_body(environ))
    except ET.ParseError:
        return None
    return [e.text or "" for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Key"]


def _s3(environ: dict, region: str, bucket_policy: Callable[[str], str | None]) -> list[Check]:
    req = S3Request.parse(environ, region)
    kind = "object" if req.key else "bucket" if req.bucket else "service"
    sub = next((q for q in S3_SUBRESOURCES if q in req.query), None)
    policy = bucket_policy(req.bucket) if req.bucket else None
    context = {"aws:securetransport": "false"}
    bucket_arn = f"arn:{PARTITION}:s3:::{req.bucket}"
    if (req.method, kind, sub) == ("POST", "bucket", "delete"):
        keys = _deleted_keys(environ)
        if keys is None:
            return [Check(UNMAPPED, bucket_arn, context, policy)]
        return [Check("s3:DeleteObject", f"{bucket_arn}/{key}", context, policy) for key in keys]
    name = S3_ACTIONS.get((req.method, kind, sub))
    if name is None:
        return [Check(UNMAPPED, bucket_arn if req.bucket else "*", context, policy)]
    if kind == "service":
        return [Check(f"s3:{name}", "*", context)]
    if name == "ListBucket":
        context.update({f"s3:{k}": req.query[k] for k in LIST_KEYS if k in req.query})
    resource = f"{bucket_arn}/{req.key}" if kind == "object" else bucket_arn
    checks = [Check(f"s3:{name}", resource, context, policy)]
    if kind == "object" and req.method == "PUT" and "x-amz-copy-source" in req.headers:  # CopyObject reads too
        source = unquote(req.headers["x-amz-copy-source"]).lstrip("/").partition("?")[0]
        checks.append(Check("s3:GetObject", f"arn:{PARTITION}:s3:::{source}", context,
                            bucket_policy(source.partition("/")[0])))
    return checks


def asked(environ: dict, service: str, region: str, account: str, body: bytes | None,
          bucket_policy: Callable[[str], str | None]) -> Asked:
    """What this (authenticated) request needs to be allowed."""
    if service == "s3":
        return Asked(service, tuple(_s3(environ, region, bucket_policy)))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return Asked(service, tuple(_json(service, target, body or b"", region, account)))
    params = {k: v[0] for k, v in parse_qs((body or b"").decode(errors="replace")).items()}
    if "Action" not in params:
        params.update({k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
    if service == "ec2":
        return Asked(service, tuple(_ec2(params, region, account)))
    return Asked(service, tuple(_query(service, params, account)))
