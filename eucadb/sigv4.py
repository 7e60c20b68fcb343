"""SigV4 verification of received requests, shared by eucadb's own API and the embedded cloud.

We rebuild the request as botocore would have signed it, restricted to the headers the client listed
in SignedHeaders, recompute the signature with the key's secret and compare in constant time. The
caller maps the neutral `SigV4Error` codes to its service's own error shape.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = timedelta(minutes=15)
AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]{64})\s*$")
# payload hashes S3 clients send instead of the body's digest (streamed or unsigned bodies)
UNHASHED_PAYLOADS = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                               "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"})


class SigV4Error(Exception):
    """A request that is not correctly signed; `code` is AWS's generic name for the reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Scope:
    """What the Authorization header claims: whose key, for which region and service."""
    key: str
    date: str
    region: str
    service: str
    signed: tuple[str, ...]
    signature: str


def parse(authorization: str | None) -> Scope:
    if not authorization:
        raise SigV4Error("MissingAuthenticationToken", "Request is missing Authentication Token")
    match = AUTH_RE.match(authorization.strip())
    if not match:
        raise SigV4Error("IncompleteSignature", "Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
    return Scope(match["key"], match["date"], match["region"], match["service"],
                 tuple(match["signed"].split(";")), match["sig"])


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's signer, but signing exactly the headers the client said it signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: tuple[str, ...]):
        super().__init__(credentials, service, region)
        self.signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name in self.signed:  # WSGI spells `_` in a header name as `-` (both are `_` in environ)
            header_map[name] = request.headers.get(name, request.headers.get(name.replace("_", "-"), ""))
        return header_map


class _ReceivedS3RequestSigner(_ReceivedRequestSigner, S3SigV4Auth):
    """S3's variant: the path is not encoded twice and the payload hash is the header's value."""


def _parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SigV4Error("IncompleteSignature", "X-Amz-Date must be in the format YYYYMMDD'T'HHMMSS'Z'.") from None


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
           secret_for: Callable[[Scope], str | None], now: datetime | None = None,
           service: str | None = None) -> Scope:
    """The scope of a correctly signed request; SigV4Error otherwise.

    `url` is scheme://host/path?query exactly as the client sent it (path still percent-encoded);
    `headers` have lower-case names. `body` None means "not read" (S3 streams): the signature then
    covers the body's claimed digest only. `secret_for` answers None for an unknown key (it may
    itself raise SigV4Error, e.g. for a session token that does not match)."""
    scope = parse(headers.get("authorization"))
    amz_date = headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    now = now or datetime.now(timezone.utc)
    if abs(now - signed_at) > MAX_SKEW:
        raise SigV4Error("RequestExpired", f"Signature expired: {amz_date} is not within 15 minutes of "
                                           f"{now.strftime('%Y%m%dT%H%M%SZ')}.")
    if "host" not in scope.signed or scope.date != amz_date[:8] or (service and scope.service != service):
        raise SigV4Error("IncompleteSignature", "The credential scope or signed headers are not valid.")
    secret = secret_for(scope)
    if secret is None:
        raise SigV4Error("InvalidClientTokenId", "The security token included in the request is invalid.")
    body_hash = headers.get("x-amz-content-sha256")
    if body is not None and body_hash is not None and body_hash not in UNHASHED_PAYLOADS \
            and body_hash != hashlib.sha256(body).hexdigest():
        raise SigV4Error("SignatureDoesNotMatch", "The request body does not match X-Amz-Content-SHA256.")
    aws_request = AWSRequest(method=method, url=url, headers=dict(headers), data=body or b"")
    aws_request.context["timestamp"] = amz_date
    signer_cls = _ReceivedS3RequestSigner if scope.service == "s3" else _ReceivedRequestSigner
    signer = signer_cls(Credentials(scope.key, secret), scope.service, scope.region, scope.signed)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, scope.signature):
        raise SigV4Error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                  "signature you provided.")
    return scope
