"""SigV4 verification of received requests, shared by every eucadb API (CloudWatch, Reporting).

We rebuild the request as botocore would have signed it, restricted to the headers the client listed
in SignedHeaders, recompute the signature with the key's secret and compare in constant time. The
credential scope must name this endpoint's service and region: a request signed for another region
is refused as AWS refuses it (`SignatureDoesNotMatch`, "Credential should be scoped to a valid
region, not '…'."), so a signature made for one deployment cannot be replayed against another.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping, Protocol
from urllib.parse import quote, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = timedelta(minutes=15)
AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;\-]+),\s*Signature=(?P<sig>[0-9a-f]{64})\s*$")


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


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's signer, but signing exactly the headers the client said it signed."""

    def __init__(self, credentials: Credentials, scope: Scope, signed: list[str]):
        super().__init__(credentials, scope.service, scope.region)
        self.signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name in self.signed:
            header_map[name] = request.headers.get(name, "")
        return header_map


def _parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthError("IncompleteSignature", "X-Amz-Date must be in the format YYYYMMDD'T'HHMMSS'Z'.") from None


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
    """The access key id of a request correctly signed for `scope`; AuthError otherwise."""
    require_signature(request.headers)
    match = AUTH_RE.match(request.headers["authorization"].strip())
    if not match:
        raise AuthError("IncompleteSignature", "Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
    amz_date = request.headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    now = now or datetime.now(timezone.utc)
    if abs(now - signed_at) > MAX_SKEW:
        raise AuthError("RequestExpired", f"Signature expired: {amz_date} is not within 15 minutes of "
                                          f"{now.strftime('%Y%m%dT%H%M%SZ')}.")
    signed = match["signed"].split(";")
    if "host" not in signed or match["date"] != amz_date[:8] or match["service"] != scope.service:
        raise AuthError("IncompleteSignature", "The credential scope or signed headers are not valid.")
    if match["region"] != scope.region:
        raise AuthError("SignatureDoesNotMatch",
                        f"Credential should be scoped to a valid region, not '{match['region'][:64]}'.")
    secret = secret_for(match["key"])
    if secret is None:
        raise AuthError("InvalidClientTokenId", "The security token included in the request is invalid.")
    body_hash = request.headers.get("x-amz-content-sha256")
    if body_hash is not None and body_hash != hashlib.sha256(request.body).hexdigest():   # UNSIGNED-PAYLOAD too
        raise AuthError("SignatureDoesNotMatch", "The request body does not match X-Amz-Content-SHA256.")
    url = f"http://{request.headers.get('host', request.host)}{request.full_path}"
    if request.query:
        url += "?" + canonical_query(request.query)
    aws_request = AWSRequest(method=request.method, url=url, headers=dict(request.headers), data=request.body)
    aws_request.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(Credentials(match["key"], secret), scope, signed)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, match["sig"]):
        raise AuthError("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                 "signature you provided.")
    return match["key"]
