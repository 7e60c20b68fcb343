"""The one IAM policy evaluator of the embedded cloud, for identity policies (a user's, a role's, an
assumed-role session's) and resource policies (a secret's, a bucket's) alike.

Moto stores policies and never reads them back; AWS evaluates every one that applies on every
request. `evaluate` answers what one policy document says about one (caller, action, resource,
condition context): an explicit Deny, an Allow, or nothing. authorize.py combines the answers of
all the policies that apply as AWS does (explicit Deny > Allow > implicit deny).

Supported: Effect, Action/NotAction, Resource/NotResource (wildcards `*` `?`, per ARN segment),
Principal ("*", {"AWS": "*" | ARN | account | [..]}, {"Service": name | [..]}) in resource
policies (a role's trust policy is one), and the Condition
operators String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike},
Arn{Equals,NotEquals,Like,NotLike}, Bool (each with IfExists) and Null, on the condition keys
`KNOWN_KEYS` lists, with AWS's rule for a key the request does not have (false; true for a
negated operator; true for ...IfExists). Anything else (NotPrincipal, a Principal in an identity
policy, another operator, ForAnyValue/ForAllValues, policy variables, an unknown key) is not
guessed at: a Deny statement using it applies, an Allow does not — fail closed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Callable, Mapping


class Decision(Enum):
    DENY = "Deny"
    ALLOW = "Allow"
    NONE = "None"  # the policy says nothing about this request


@dataclass(frozen=True)
class Caller:
    principal_arn: str  # aws:PrincipalArn: a user's ARN, a role session's role ARN
    account: str
    session_arn: str | None = None  # an assumed-role session's own ARN (a Principal may name it)
    username: str | None = None  # aws:username: IAM users only
    service: str | None = None  # a service principal (ec2.amazonaws.com) calling on its own behalf


class Unsupported(Exception):
    """A policy element this evaluator does not implement."""


# condition keys the embedded cloud fills in where the request has them; any other key is Unsupported
KNOWN_KEYS = re.compile(r"aws:(principalarn|principalaccount|username|securetransport|resourcetag/.+)"
                        r"|(ec2|secretsmanager):resourcetag/.+|s3:(prefix|delimiter|max-keys)")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """IAM's wildcards only: `*` any run, `?` one character (no [sets] as in fnmatch)."""
    if "${" in pattern:
        raise Unsupported(f"policy variable in {pattern}")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _like(pattern: str, value: str) -> bool:
    return _glob(pattern).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ARN wildcards match within one of the six colon-separated segments, not across them."""
    if pattern == "*":
        return True
    patterns, values = pattern.split(":", 5), value.split(":", 5)
    return len(patterns) == len(values) and all(_like(p, v) for p, v in zip(patterns, values))


def _exact(pattern: str, value: str) -> bool:
    if "${" in pattern:
        raise Unsupported(f"policy variable in {pattern}")
    return pattern == value


OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _exact, "StringLike": _like,
    "StringEqualsIgnoreCase": lambda p, v: _exact(p.lower(), v.lower()),
    "ArnEquals": _exact, "ArnLike": _arn_like,
    "Bool": lambda p, v: p.lower() == v.lower(),
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _context(caller: Caller, context: Mapping[str, str]) -> dict[str, str]:
    found = {"aws:principalarn": caller.principal_arn, "aws:principalaccount": caller.account}
    if caller.username:
        found["aws:username"] = caller.username
    found.update(context)
    return found


def _condition_holds(operator: str, clauses: dict, context: Mapping[str, str]) -> bool:
    if not isinstance(clauses, dict):
        raise Unsupported(f"condition {operator}")
    for key, patterns in clauses.items():
        name = key.lower()
        if not KNOWN_KEYS.fullmatch(name):
            raise Unsupported(f"condition key {key}")
        value = context.get(name)
        if operator == "Null":  # "true": the key must be absent; "false": present
            if any((value is None) != (str(p).lower() == "true") for p in _listed(patterns)):
                return False
            continue
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        negated = base in NEGATED
        test = OPERATORS.get(NEGATED.get(base, base))
        if test is None:
            raise Unsupported(f"condition operator {operator}")
        if value is None:  # AWS: a missing key matches nothing; negated and IfExists hold
            if if_exists or negated:
                continue
            return False
        matched = any(test(str(p), value) for p in _listed(patterns))
        if matched == negated:
            return False
    return True


def _principal_matches(principal: Any, caller: Caller, direct: bool = False) -> bool:
    """Does a resource policy's Principal name the caller? `direct`: by its own ARN (or service
    name), not through its account — what lets a role's trust policy stand without an identity policy."""
    if principal == "*":
        return not direct
    if not isinstance(principal, dict) or set(principal) - {"AWS", "Service"}:
        raise Unsupported(f"principal {principal!r}")
    if caller.service:
        return caller.service in _listed(principal.get("Service"))
    names = {caller.principal_arn} | ({caller.session_arn} if caller.session_arn else set())
    if not direct:
        names |= {"*", caller.account, f"arn:aws:iam::{caller.account}:root"}
    return any(entry in names for entry in _listed(principal.get("AWS")))


def _matches_any(patterns: list[str], value: str, test: Callable[[str, str], bool]) -> bool:
    return any(test(p, value) for p in patterns)


def _action_like(pattern: str, action: str) -> bool:
    return _glob(pattern, True).fullmatch(action) is not None


def _applies(statement: dict, caller: Caller, action: str, resource: str, context: Mapping[str, str],
             identity: bool, direct: bool = False) -> bool:
    unknown = set(statement) - STATEMENT_KEYS
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    if ("Action" in statement) == ("NotAction" in statement) or ("Resource" in statement) == \
            ("NotResource" in statement) and (identity or "Resource" in statement):
        # a trust policy names no Resource: the role it is attached to is the resource
        raise Unsupported("a statement needs exactly one of Action/NotAction and of Resource/NotResource")
    if "Action" in statement:
        if not _matches_any(_listed(statement["Action"]), action, _action_like):
            return False
    elif _matches_any(_listed(statement["NotAction"]), action, _action_like):
        return False
    if "Resource" in statement:
        if not _matches_any(_listed(statement["Resource"]), resource, _arn_like):
            return False
    elif "NotResource" in statement and _matches_any(_listed(statement["NotResource"]), resource, _arn_like):
        return False
    if identity:
        if "Principal" in statement:
            raise Unsupported("Principal in an identity policy")
    elif not _principal_matches(statement.get("Principal"), caller, direct):
        return False
    return all(_condition_holds(op, clauses, context) for op, clauses in (statement.get("Condition") or {}).items())


@lru_cache(maxsize=1024)
def _parsed(document: str) -> tuple[dict, ...]:
    """A policy's statements (cached: the same few documents are evaluated on every request)."""
    statements = json.loads(document).get("Statement") or []
    return tuple([statements] if isinstance(statements, dict) else statements)


def statements_of(policy: str | dict) -> tuple[dict, ...]:
    if isinstance(policy, str):
        return _parsed(policy)
    statements = policy.get("Statement") or []
    return tuple([statements] if isinstance(statements, dict) else statements)


def evaluate(policy: str | dict | None, caller: Caller, action: str, resource: str,
             context: Mapping[str, str] | None = None, *, identity: bool = False,
             direct: bool = False) -> Decision:
    """Deny if any statement denies (explicit Deny wins), else Allow if one allows, else NONE.
    `context` holds the request's condition keys (lower-case names); `identity` says the policy is
    attached to the caller (no Principal element) rather than to the resource; `direct` counts only
    resource-policy statements naming the caller itself, not its account or "*"."""
    if not policy:
        return Decision.NONE
    try:
        statements = statements_of(policy)
    except (ValueError, AttributeError):
        return Decision.DENY  # a document that is not a policy: fail closed
    full = _context(caller, context or {})
    decision = Decision.NONE
    for statement in statements:
        deny = isinstance(statement, dict) and statement.get("Effect") == "Deny"
        try:
            if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
                raise Unsupported("statement effect")
            applies = _applies(statement, caller, action, resource, full, identity, direct)
        except Unsupported:
            applies = deny  # fail closed
        if applies and deny:
            return Decision.DENY
        if applies:
            decision = Decision.ALLOW
    return decision
