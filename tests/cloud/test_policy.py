"""Resource-policy evaluation: explicit Deny wins, the conditions eucadb's policies use, fail closed."""
from __future__ import annotations

from eucadb.cloud.local.policy import Caller, Decision, evaluate
from eucadb.workflow.steps.key_delivery import resource_policy

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/eucadb/a/a-db"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:eucadb/a/server-key-AbCdEf"
GET = "secretsmanager:GetSecretValue"


def _decide(policy, arn: str, action: str = GET) -> Decision:
    return evaluate(policy, Caller(arn, ACCOUNT), action, SECRET)


def test_key_delivery_policy_lets_only_the_instance_role_read():
    policy = resource_policy(ROLE)
    assert _decide(policy, ROLE) is Decision.NONE  # not denied: the identity policy decides
    assert _decide(policy, f"arn:aws:iam::{ACCOUNT}:user/eucadb/eucadb-root") is Decision.DENY
    assert _decide(policy, f"arn:aws:iam::{ACCOUNT}:root") is Decision.DENY
    assert _decide(policy, f"arn:aws:iam::{ACCOUNT}:role/eucadb/b/b-db") is Decision.DENY
    assert _decide(policy, f"arn:aws:iam::{ACCOUNT}:user/x", "secretsmanager:DescribeSecret") is Decision.NONE


def test_deny_wins_over_allow_and_wildcards_match():
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "secretsmanager:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": [ROLE]}, "Action": "secretsmanager:Get*",
         "Resource": "arn:aws:secretsmanager:*:*:secret:eucadb/a/*"}]}
    assert _decide(policy, ROLE) is Decision.DENY
    assert _decide(policy, f"arn:aws:iam::{ACCOUNT}:user/u") is Decision.ALLOW
    assert _decide(None, ROLE) is Decision.NONE


def test_what_it_cannot_evaluate_fails_closed():
    unknown_key = {"Statement": {"Effect": "Deny", "Principal": "*", "Action": GET, "Resource": "*",
                                 "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}}
    assert _decide(unknown_key, ROLE) is Decision.DENY
    not_principal = {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": GET,
                                    "Resource": "*"}]}
    assert _decide(not_principal, ROLE) is Decision.NONE


USER = Caller(f"arn:aws:iam::{ACCOUNT}:user/u", ACCOUNT, username="u")
VOLUME = f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-1"


def _identity(statement: dict, action: str, resource: str, context: dict | None = None) -> Decision:
    return evaluate({"Statement": [statement]}, USER, action, resource, context, identity=True)


def test_not_action_and_not_resource_invert_the_match():
    allow_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert _identity(allow_but_iam, "ec2:DescribeVolumes", "*") is Decision.ALLOW
    assert _identity(allow_but_iam, "iam:CreateUser", "*") is Decision.NONE
    deny_but_volumes = {"Effect": "Deny", "Action": "ec2:*", "NotResource": "arn:aws:ec2:*:*:volume/*"}
    assert _identity(deny_but_volumes, "ec2:AttachVolume", VOLUME) is Decision.NONE
    assert _identity(deny_but_volumes, "ec2:AttachVolume", VOLUME.replace("volume", "instance")) is Decision.DENY


def test_arn_wildcards_stay_within_a_segment_and_are_not_fnmatch_sets():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p/*"}
    assert _identity(statement, "s3:GetObject", "arn:aws:s3:::b/p/deep/key") is Decision.ALLOW
    assert _identity(statement, "s3:GetObject", "arn:aws:s3:::b/q/key") is Decision.NONE
    across = {"Effect": "Allow", "Action": "ec2:AttachVolume", "Resource": "arn:aws:ec2:*:volume/*"}
    assert _identity(across, "ec2:AttachVolume", VOLUME) is Decision.NONE  # `*` does not eat the account
    brackets = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/[ab]"}
    assert _identity(brackets, "s3:GetObject", "arn:aws:s3:::b/a") is Decision.NONE
    assert _identity({**statement, "Action": "S3:get*"}, "s3:GetObject", "arn:aws:s3:::b/p/k") is Decision.ALLOW


def test_a_missing_condition_key_matches_nothing_but_negated_and_if_exists_hold():
    tagged = {"Effect": "Allow", "Action": "ec2:AttachVolume", "Resource": "*",
              "Condition": {"StringEquals": {"aws:ResourceTag/eucadb:deployment": "a"}}}
    assert _identity(tagged, "ec2:AttachVolume", VOLUME, {"aws:resourcetag/eucadb:deployment": "a"}) is Decision.ALLOW
    assert _identity(tagged, "ec2:AttachVolume", VOLUME, {"aws:resourcetag/eucadb:deployment": "b"}) is Decision.NONE
    assert _identity(tagged, "ec2:AttachVolume", VOLUME) is Decision.NONE
    negated = {**tagged, "Effect": "Deny", "Condition": {"StringNotEquals": {"ec2:ResourceTag/team": "x"}}}
    assert _identity(negated, "ec2:AttachVolume", VOLUME) is Decision.DENY
    if_exists = {**tagged, "Condition": {"StringLikeIfExists": {"s3:prefix": "p/*"}}}
    assert _identity(if_exists, "ec2:AttachVolume", VOLUME) is Decision.ALLOW
    assert _identity(if_exists, "ec2:AttachVolume", VOLUME, {"s3:prefix": "q/"}) is Decision.NONE
    null = {**tagged, "Condition": {"Null": {"s3:prefix": "false"}}}
    assert _identity(null, "ec2:AttachVolume", VOLUME) is Decision.NONE
    assert _identity(null, "ec2:AttachVolume", VOLUME, {"s3:prefix": ""}) is Decision.ALLOW
    insecure = {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert _identity(insecure, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:securetransport": "false"}) is Decision.DENY


def test_an_identity_policy_fails_closed_on_what_it_cannot_evaluate():
    base = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    for odd in ({"Principal": "*"}, {"Condition": {"NumericLessThan": {"s3:max-keys": "5"}}},
                {"Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}},
                {"Condition": {"StringEquals": {"aws:SourceIp": "127.0.0.1"}}},
                {"Resource": "arn:aws:s3:::b/${aws:username}/*"}, {"Effect": "allow"}):
        assert _identity({**base, **odd}, "s3:GetObject", "arn:aws:s3:::b/u/k") is Decision.NONE, odd
        assert _identity({**base, **odd, "Effect": "Deny"}, "s3:GetObject", "arn:aws:s3:::b/u/k") is Decision.DENY \
            or odd == {"Effect": "allow"}, odd
    assert evaluate("not json", USER, "s3:GetObject", "*", identity=True) is Decision.DENY


def test_a_resource_policy_may_name_the_role_session_itself():
    session = Caller(ROLE, ACCOUNT, session_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/a-db/i-1")
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": session.session_arn}, "Action": GET,
                             "Resource": "*"}]}
    assert evaluate(policy, session, GET, SECRET) is Decision.ALLOW
    assert evaluate(policy, Caller(ROLE, ACCOUNT, session_arn=session.session_arn[:-1] + "2"), GET, SECRET) \
        is Decision.NONE


def test_a_trust_policy_names_services_and_principals_without_a_resource():
    from eucadb.workflow.steps.instance_role import TRUST
    role = f"arn:aws:iam::{ACCOUNT}:role/eucadb/a/a-db"
    ec2 = Caller("ec2.amazonaws.com", ACCOUNT, service="ec2.amazonaws.com")
    user = Caller(f"arn:aws:iam::{ACCOUNT}:user/u", ACCOUNT, username="u")
    assert evaluate(TRUST, ec2, "sts:AssumeRole", role) is Decision.ALLOW  # eucadb's instance role
    assert evaluate(TRUST, user, "sts:AssumeRole", role) is Decision.NONE
    by_account = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                 "Action": "sts:AssumeRole"}]}
    assert evaluate(by_account, user, "sts:AssumeRole", role) is Decision.ALLOW
    assert evaluate(by_account, user, "sts:AssumeRole", role, direct=True) is Decision.NONE  # not by name
    assert evaluate(by_account, ec2, "sts:AssumeRole", role) is Decision.NONE  # a service is not the account
    by_name = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": user.principal_arn}, "Action": "sts:AssumeRole"}]}
    assert evaluate(by_name, user, "sts:AssumeRole", role, direct=True) is Decision.ALLOW
