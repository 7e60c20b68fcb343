"""Authorization of an authenticated request, as AWS decides it within one account.

The policies that apply are the caller's identity policies — an IAM user's inline and attached
managed policies and those of its groups; for an assumed-role session, the role's, limited by the
session policy AssumeRole was given — and the resource's own policy (a secret's, a bucket's).
Each is evaluated by the one evaluator (policy.py) for every resource the request touches
(iam_requests.py), and combined as AWS combines them for same-account access:

    an explicit Deny in any policy  >  an Allow in the identity OR the resource policy  >  implicit deny

The gateway's own key (principals.Kind.INTERNAL) is the cloud acting for itself and is not checked.
eucadb's root user `eucadb-root` is an IAM user like any other here: its admin policy (Allow * on *)
is what gives it full access, so a resource policy's explicit Deny still refuses it, as on AWS.
AssumeRole is the exception AWS makes: the role's trust policy (moto's AssumeRole ignores it, so it
is checked here) must allow the caller, and an IAM caller needs its own Allow too unless the trust
policy names it by ARN. The EC2 service (`ec2.amazonaws.com`, principals.Kind.SERVICE: the realizer
vending instance-profile credentials) has no identity policy: only a trust naming it lets it in.
Not modelled: permissions boundaries, SCPs, cross-account access (there is one account).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from moto.iam.models import iam_backends

from eucadb.cloud.local.iam_requests import PARTITION, Check
from eucadb.cloud.local.policy import Caller, Decision, evaluate
from eucadb.cloud.local.principals import Kind, Principal


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, in AWS's words (the service adds its own code and status)."""
    who: str
    action: str
    resource: str
    denied_by: str | None = None  # "identity-based" / "resource-based" for an explicit Deny, else None
    untrusted: bool = False  # a role's trust policy does not allow the caller (STS says no more)

    def __str__(self) -> str:
        base = f"User: {self.who} is not authorized to perform: {self.action} on resource: {self.resource}"
        if self.untrusted:
            return base
        if self.denied_by:
            article = "an" if self.denied_by[0] in "aeiou" else "a"
            return f"{base} with an explicit deny in {article} {self.denied_by} policy"
        return f"{base} because no identity-based policy allows the {self.action} action"


def _documents(holder: object) -> list[str]:
    """A user's, group's or role's inline policies and the default versions of its managed ones."""
    found = list(getattr(holder, "policies", {}).values())
    for managed in list(getattr(holder, "managed_policies", {}).values()):
        found.extend(v.document for v in managed.versions if v.is_default)
    return found


def identity_policies(principal: Principal, account: str) -> list[str]:
    """The identity policy documents that apply to the caller (none for an unknown identity)."""
    iam = iam_backends[account][PARTITION]
    if principal.kind is Kind.SERVICE:  # a service principal acts only where a resource policy trusts it
        return []
    if principal.kind is Kind.USER:
        user = iam.users.get(principal.name)
        if user is None:
            return []
        groups = [g for g in list(iam.groups.values()) if user in g.users]
        return [d for holder in (user, *groups) for d in _documents(holder)]
    # by name (unique in an account): AssumeRole may have been given the ARN without the role's path
    role = next((r for r in list(iam.roles.values()) if r.name == principal.name), None)
    return _documents(role) if role is not None else []


def _combined(decisions: Iterable[Decision]) -> Decision:
    found = Decision.NONE
    for decision in decisions:
        if decision is Decision.DENY:
            return Decision.DENY
        if decision is Decision.ALLOW:
            found = Decision.ALLOW
    return found


def decide(principal: Principal, checks: Iterable[Check], account: str) -> Refusal | None:
    """None if every check is allowed, else the first refusal."""
    if principal.kind is Kind.INTERNAL:
        return None
    caller = Caller(principal.arn, account, principal.session_arn,
                    principal.name if principal.kind is Kind.USER else None,
                    principal.name if principal.kind is Kind.SERVICE else None)
    documents = identity_policies(principal, account)
    for check in checks:
        args = (caller, check.action, check.resource, check.context)
        identity = _combined(evaluate(d, *args, identity=True) for d in documents)
        if principal.session_policy and identity is not Decision.DENY:
            session = evaluate(principal.session_policy, *args, identity=True)
            identity = Decision.DENY if session is Decision.DENY else \
                identity if session is Decision.ALLOW else Decision.NONE
        resource = evaluate(check.resource_policy, *args)
        who = principal.session_arn or principal.arn
        if identity is Decision.DENY:
            return Refusal(who, check.action, check.resource, "identity-based")
        if resource is Decision.DENY:
            return Refusal(who, check.action, check.resource, "resource-based")
        if check.trust:
            refusal = _trusted(check, caller, principal, identity, resource, who)
            if refusal:
                return refusal
        elif Decision.ALLOW not in (identity, resource):
            return Refusal(who, check.action, check.resource)
    return None


def _trusted(check: Check, caller: Caller, principal: Principal, identity: Decision, trust: Decision,
             who: str) -> Refusal | None:
    """AssumeRole: the role's trust policy must allow the caller (unlike other resource policies,
    an identity policy alone is not enough), and an IAM caller also needs its identity policy's
    Allow unless the trust policy names it by its own ARN rather than through its account."""
    if trust is not Decision.ALLOW:
        return Refusal(who, check.action, check.resource, untrusted=True)
    if principal.kind is Kind.SERVICE or identity is Decision.ALLOW:
        return None
    if evaluate(check.resource_policy, caller, check.action, check.resource, check.context,
                direct=True) is Decision.ALLOW:
        return None
    return Refusal(who, check.action, check.resource)
