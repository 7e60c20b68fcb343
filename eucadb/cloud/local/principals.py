"""Who may call the embedded cloud: the keys it issued, looked up in moto's own IAM and STS records.

Three kinds of key, as on AWS: IAM users' access keys (moto's IAM backend), temporary credentials of
assumed roles (moto's STS backend, which instance profiles use through the metadata service), and
the gateway's own key for its requests to itself (random per API process, held in memory only).

The cloud's root user `eucadb-root` (admin policy) is created by the API process at its start, with
an access key written 0600 to `<cloud dir>/root-credentials.json`; `eucadb cloud up` copies it into
eucadb's config (eucadb.yaml, also 0600). The key lives in moto's IAM, so the persisted state keeps it
and the same key works after a restart; a lost file or a deleted key gets a new key.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from enum import Enum

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.state import write_durably

PARTITION = "aws"
ROOT_USER = "eucadb-root"
ROOT_POLICY = "eucadb-admin"
EC2_SERVICE = "ec2.amazonaws.com"  # who vends instance-profile credentials (the realizer, with its key)
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class Kind(Enum):
    USER = "user"  # an IAM user's access key
    ROLE = "role"  # an assumed-role session's temporary credentials
    INTERNAL = "internal"  # the gateway's own key: the cloud acting with its own authority
    SERVICE = "service"  # an AWS service principal (ec2.amazonaws.com): no identity policy, only trust


@dataclass(frozen=True)
class Principal:
    """An issued key: whose it is (`arn`, as aws:PrincipalArn sees it) and what proves it; `name`
    (the user's or the role's), `session_arn` and `session_policy` (AssumeRole's Policy) are what
    authorization (authorize.py) needs to find the policies that apply."""
    arn: str
    secret: str
    token: str | None = None  # the session token temporary credentials must send
    kind: Kind = Kind.INTERNAL
    name: str = ""
    session_arn: str | None = None
    session_policy: str | None = None


def lookup(key_id: str, internal: dict[str, Principal]) -> Principal | None:
    """The principal an access key id belongs to; None if this cloud did not issue it (or it is
    inactive or expired)."""
    if key_id in internal:
        return internal[key_id]
    iam = iam_backends[DEFAULT_ACCOUNT_ID][PARTITION]
    key = iam.access_keys.get(key_id)
    if key is None:
        return None
    if key.user_name is not None:
        user = iam.users.get(key.user_name)
        return Principal(user.arn, key.secret_access_key, kind=Kind.USER, name=user.name) \
            if user and key.status == "Active" else None
    now = utcnow()
    for role in list(sts_backends[DEFAULT_ACCOUNT_ID][PARTITION].assumed_roles):  # appended to concurrently
        if role.access_key_id == key_id and role.expiration > now:
            # aws:PrincipalArn of a role session is the role's ARN, not the session's
            return Principal(role.role_arn, role.secret_access_key, role.session_token, Kind.ROLE,
                             role.role_arn.rsplit("/", 1)[-1], role.arn, role.policy)
    return None


def gateway_principal() -> tuple[str, Principal]:
    """A fresh key for the gateway's requests to itself (acting with the cloud's own authority)."""
    return "EUCADBGW" + secrets.token_hex(6).upper(), Principal(
        f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root", secrets.token_urlsafe(30))


def ensure_service_key(layout: Layout) -> tuple[str, Principal]:
    """The EC2 service principal's key: the one in its file (0600), else a new one written there.
    Not an IAM entity (AWS's service principals are not): the API holds it in its internal map,
    and only a role whose trust policy names `ec2.amazonaws.com` lets it assume the role."""
    held = layout.service_credentials()
    if held is None:
        held = {"cloud.access_key_id": "EUCADBEC2" + secrets.token_hex(6).upper(),
                "cloud.secret_access_key": secrets.token_urlsafe(30)}
        write_durably(layout.service_credentials_file, json.dumps(
            {"access_key_id": held["cloud.access_key_id"],
             "secret_access_key": held["cloud.secret_access_key"]}).encode())
    return held["cloud.access_key_id"], Principal(EC2_SERVICE, held["cloud.secret_access_key"],
                                                  kind=Kind.SERVICE, name=EC2_SERVICE)


def ensure_root(layout: Layout, region: str) -> str:
    """The root user's access key id: the one in the credentials file while moto's IAM still knows
    it, else a new one (written 0600 before it is returned). Call before serving, then save the state."""
    iam = iam_backends[DEFAULT_ACCOUNT_ID][PARTITION]
    held = layout.root_credentials()
    if held and lookup(held["cloud.access_key_id"], {}) is not None \
            and iam.access_keys[held["cloud.access_key_id"]].user_name == ROOT_USER:
        return held["cloud.access_key_id"]
    if ROOT_USER not in iam.users:
        iam.create_user(region, ROOT_USER, path="/eucadb/")
    iam.put_user_policy(ROOT_USER, ROOT_POLICY, json.dumps(ADMIN))
    for stale in iam.list_access_keys(ROOT_USER):  # only one root key is ever valid
        iam.delete_access_key(stale.access_key_id, ROOT_USER)
    key = iam.create_access_key(ROOT_USER)
    creds = {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}
    write_durably(layout.credentials_file, json.dumps(creds).encode())
    return key.access_key_id
