"""SigV4 for every eucadb API (CloudWatch, Reporting): eucadb/sigv4.py's verifier (shared with the
embedded cloud) plus what an API endpoint adds. The credential scope must name this endpoint's
service and region: a request signed for another region
is refused as AWS refuses it (`SignatureDoesNotMatch`, "Credential should be scoped to a valid
region, not '…'."), so a signature made for one deployment cannot be replayed against another.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Protocol
from urllib.parse import quote, unquote

from eucadb import sigv4


class AuthError(Exception):
    """A request that is not (correctly) signed: an AWS error code and message, always HTTP 403."""

    status = 403

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Signed(Protocol):
    """What verification reads of a request (CloudWatch's HttpRequest and `Received` both fit)."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    full_path: str   # the percent-encoded path as sent (mount included)
    query: str
    host: str


@dataclass
class Received:
    method: str
    headers: Mapping[str, str]
    body: bytes
    full_path: str
    query: str
    host: str


@dataclass(frozen=True)
class Scope:
    """Whom an endpoint accepts signatures for: the service name and region of the credential scope."""

    service: str
    region: str


def canonical_query(query: str) -> str:
    """Each name and value URI-encoded as SigV4 prescribes (RFC 3986 unreserved characters only left as
    they are), whatever encoding the client put on the wire: botocore sends `%3A` for `:`, curl
    sends `:` and signs `%3A`; both sign the same canonical form."""
    pairs = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        pairs.append(f"{quote(unquote(name), safe='-_.~')}={quote(unquote(value), safe='-_.~')}")
    return "&".join(pairs)


def require_signature(headers: Mapping[str, str]) -> None:
    """Cheap check before a body is read: an unsigned request is refused without reading it."""
    if not headers.get("authorization"):
        raise AuthError("MissingAuthenticationToken", "Request is missing Authentication Token")


def verify(request: Signed, secret_for: Callable[[str], str | None], scope: Scope,
           now: datetime | None = None) -> str:
    """The access key id of a request correctly signed for `scope`; AuthError otherwise. The APIs read
    whole bodies, so the body must match its claimed digest (no UNSIGNED-PAYLOAD, unlike S3)."""
    require_signature(request.headers)
    body_hash = request.headers.get("x-amz-content-sha256")
    if body_hash is not None and body_hash != hashlib.sha256(request.body).hexdigest():
        raise AuthError("SignatureDoesNotMatch", "The request body does not match X-Amz-Content-SHA256.")

    def secret(claimed: sigv4.Scope) -> str | None:
        if claimed.region != scope.region:
            raise sigv4.SigV4Error("SignatureDoesNotMatch",
                                   f"Credential should be scoped to a valid region, not '{claimed.region[:64]}'.")
        return secret_for(claimed.key)

    url = f"http://{request.headers.get('host', request.host)}{request.full_path}"
    if request.query:
        url += "?" + canonical_query(request.query)
    try:
        return sigv4.verify(request.method, url, request.headers, request.body, secret, now,
                            service=scope.service).key
    except sigv4.SigV4Error as exc:
        raise AuthError(exc.code, str(exc)) from None
