"""SigV4 for the CloudWatch endpoint: the shared verifier (eucadb/services/auth.py), its refusals
rendered as CloudWatch ApiErrors (403) in the client's own protocol, and the signing key's account:
the one account a request acts for (an admin key too: CloudWatch has no cross-account reads)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from eucadb.services import auth as shared
from eucadb.services.cloudwatch.errors import auth
from eucadb.services.cloudwatch.model import SERVICE
from eucadb.services.cloudwatch.protocols import HttpRequest
from eucadb.services.keys import AccessKeys


def verify(request: HttpRequest, secret_for: Callable[[str], str | None], region: str,
           now: datetime | None = None) -> str:
    """The access key id of a request correctly signed for CloudWatch in `region`; ApiError (403) otherwise."""
    try:
        return shared.verify(request, secret_for, shared.Scope(SERVICE, region), now)
    except shared.AuthError as err:
        raise auth(err.code, err.message) from None


def caller_account(request: HttpRequest, keys: AccessKeys, region: str, now: datetime | None = None) -> str:
    """The account of the key a request is correctly signed with; ApiError (403) otherwise."""
    record = keys.lookup(verify(request, keys.secret, region, now))
    if record is None:   # deleted between the signature check and this lookup
        raise auth("InvalidClientTokenId", "The security token included in the request is invalid.")
    return record.account
