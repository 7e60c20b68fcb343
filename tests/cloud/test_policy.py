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
