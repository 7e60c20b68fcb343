"""SigV4 for the CloudWatch endpoint: the shared verifier (eucadb/services/auth.py), its refusals
rendered as CloudWatch ApiErrors (403) in the client's own protocol."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from eucadb.services import auth as shared
from eucadb.services.cloudwatch.errors import auth
from eucadb.services.cloudwatch.model import SERVICE
from eucadb.services.cloudwatch.protocols import HttpRequest


def verify(request: HttpRequest, secret_for: Callable[[str], str | None], region: str,
           now: datetime | None = None) -> str:
    """The access key id of a request correctly signed for CloudWatch in `region`; ApiError (403) otherwise."""
    try:
        return shared.verify(request, secret_for, shared.Scope(SERVICE, region), now)
    except shared.AuthError as err:
        raise auth(err.code, err.message) from None
