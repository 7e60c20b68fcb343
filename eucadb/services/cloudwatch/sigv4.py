"""SigV4 verification of requests to the CloudWatch API: eucadb/sigv4.py's verifier, answered in
CloudWatch's own error shape (403)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from eucadb import sigv4
from eucadb.services.cloudwatch.errors import auth
from eucadb.services.cloudwatch.model import SERVICE
from eucadb.services.cloudwatch.protocols import HttpRequest


def verify(request: HttpRequest, secret_for: Callable[[str], str | None],
           now: datetime | None = None) -> str:
    """The access key id of a correctly signed request; ApiError (403) otherwise."""
    url = f"http://{request.headers.get('host', request.host)}{request.full_path}"
    if request.query:
        url += "?" + request.query
    try:
        return sigv4.verify(request.method, url, request.headers, request.body,
                            lambda scope: secret_for(scope.key), now, service=SERVICE).key
    except sigv4.SigV4Error as exc:
        raise auth(exc.code, str(exc)) from None
