"""Evaluating a resource-based policy (a secret's) for one caller, as AWS does for its explicit Deny.

Moto stores a secret's resource policy and never reads it back. AWS evaluates it on every request:
an explicit Deny that matches the caller wins over any Allow, the account's root user and admins
included. That is what eucadb relies on (the server key secret denies GetSecretValue to every
principal but the instance role), so the embedded cloud evaluates it too.

Supported: Effect, Principal ("*", {"AWS": "*" | ARN | account | [..]}), Action, Resource (with
wildcards), and Condition operators String/Arn {Equals, NotEquals, Like, NotLike} (with IfExists)
on aws:PrincipalArn and aws:PrincipalAccount. Anything else in a statement (NotPrincipal, another
operator or key) is not guessed at: a Deny statement using it applies, an Allow does not — fail closed.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable


class Decision(Enum):
    DENY = "Deny"
    ALLOW = "Allow"
    NONE = "None"  # the policy says nothing about this request


@dataclass(frozen=True)
class Caller:
    principal_arn: str  # aws:PrincipalArn: a user's ARN, a role session's role ARN
    account: str


class Unsupported(Exception):
    """A policy element this evaluator does not implement."""


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v, "StringLike": _like,
    "ArnEquals": lambda p, v: p == v, "ArnLike": _like,
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _context(caller: Caller) -> dict[str, str]:
    return {"aws:principalarn": caller.principal_arn, "aws:principalaccount": caller.account}


def _condition_holds(operator: str, clauses: dict, caller: Caller) -> bool:
    base = operator.removesuffix("IfExists")
    negated = base in NEGATED
    test = OPERATORS.get(NEGATED.get(base, base))
    if test is None:
        raise Unsupported(f"condition operator {operator}")
    context = _context(caller)
    for key, patterns in clauses.items():
        if key.lower() not in context:
            raise Unsupported(f"condition key {key}")
        matched = any(test(p, context[key.lower()]) for p in _listed(patterns))
        if matched == negated:
            return False
    return True


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict) or set(principal) - {"AWS"}:
        raise Unsupported(f"principal {principal!r}")
    for entry in _listed(principal.get("AWS")):
        if entry in ("*", caller.principal_arn, caller.account, f"arn:aws:iam::{caller.account}:root"):
            return True
    return False


def _applies(statement: dict, caller: Caller, action: str, resource: str) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(statement.get("Action"))):
        return False
    if not any(_like(r, resource) for r in _listed(statement.get("Resource", "*"))):
        return False
    if not _principal_matches(statement.get("Principal"), caller):
        return False
    return all(_condition_holds(op, clauses, caller) for op, clauses in (statement.get("Condition") or {}).items())


def evaluate(policy: str | dict | None, caller: Caller, action: str, resource: str) -> Decision:
    """Deny if any statement denies the caller (explicit Deny wins), else Allow if one allows."""
    if not policy:
        return Decision.NONE
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement") or []
    decision = Decision.NONE
    for statement in [statements] if isinstance(statements, dict) else statements:
        deny = statement.get("Effect") == "Deny"
        try:
            applies = _applies(statement, caller, action, resource)
        except Unsupported:
            applies = deny  # fail closed
        if applies and deny:
            return Decision.DENY
        if applies:
            decision = Decision.ALLOW
    return decision
