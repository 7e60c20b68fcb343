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
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = timedelta(minutes=15)
MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL is valid for at most a week, as on AWS
ALGORITHM = "AWS4-HMAC-SHA256"
CREDENTIAL_RE = re.compile(r"(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
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
    token: str | None = None  # the session token sent with temporary credentials
    expires: int | None = None  # a presigned URL's X-Amz-Expires (seconds); None for a signed header


def is_presigned(query: str) -> bool:
    """Is the signature in the query string (a presigned URL) rather than the Authorization header?"""
    return "X-Amz-Credential=" in query and "X-Amz-Signature=" in query


def parse_query(query: str) -> tuple[Scope, str]:
    """A presigned URL's scope and its X-Amz-Date; SigV4Error (AWS's query-auth wording) otherwise."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    missing = [n for n in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                           "X-Amz-SignedHeaders", "X-Amz-Signature") if n not in params]
    if missing:
        raise SigV4Error("AuthorizationQueryParametersError", "Query-string authentication version 4 "
                         f"requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                         f"X-Amz-SignedHeaders, and X-Amz-Expires parameters (missing {', '.join(missing)}).")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    credential = CREDENTIAL_RE.fullmatch(params["X-Amz-Credential"])
    if not credential:
        raise SigV4Error("AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter; "
                         "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    expires = params["X-Amz-Expires"]
    if not expires.isdigit():
        raise SigV4Error("AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
    if int(expires) > MAX_EXPIRES:
        raise SigV4Error("AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week "
                         f"(in seconds) that is 7 days or {MAX_EXPIRES} seconds")
    if not re.fullmatch(r"[0-9a-f]{64}", params["X-Amz-Signature"]):
        raise SigV4Error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                  "signature you provided.")
    return Scope(credential["key"], credential["date"], credential["region"], credential["service"],
                 tuple(params["X-Amz-SignedHeaders"].split(";")), params["X-Amz-Signature"],
                 params.get("X-Amz-Security-Token"), int(expires)), params["X-Amz-Date"]


def parse(authorization: str | None, token: str | None = None) -> Scope:
    if not authorization:
        raise SigV4Error("MissingAuthenticationToken", "Request is missing Authentication Token")
    match = AUTH_RE.match(authorization.strip())
    if not match:
        raise SigV4Error("IncompleteSignature", "Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
    return Scope(match["key"], match["date"], match["region"], match["service"],
                 tuple(match["signed"].split(";")), match["sig"], token)


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


class _ReceivedPresignedS3Signer(_ReceivedS3RequestSigner):
    """A presigned S3 URL: the body is never signed (UNSIGNED-PAYLOAD), as botocore's S3SigV4QueryAuth."""

    def payload(self, request: AWSRequest) -> str:
        return "UNSIGNED-PAYLOAD"


def _without_signature(url: str) -> str:
    """The URL as it was signed: the query minus X-Amz-Signature, pairs kept as the client encoded them."""
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("X-Amz-Signature="))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SigV4Error("IncompleteSignature", "X-Amz-Date must be in the format YYYYMMDD'T'HHMMSS'Z'.") from None


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
           secret_for: Callable[[Scope], str | None], now: datetime | None = None,
           service: str | None = None) -> Scope:
    """The scope of a correctly signed request (Authorization header, or an S3 presigned URL's
    query string); SigV4Error otherwise.

    `url` is scheme://host/path?query exactly as the client sent it (path still percent-encoded);
    `headers` have lower-case names. `body` None means "not read" (S3 streams): the signature then
    covers the body's claimed digest only. `secret_for` answers None for an unknown key (it may
    itself raise SigV4Error, e.g. for a session token that does not match)."""
    query = urlsplit(url).query
    presigned = "authorization" not in headers and is_presigned(query)
    if presigned:
        scope, amz_date = parse_query(query)
    else:
        scope, amz_date = parse(headers.get("authorization"), headers.get("x-amz-security-token")), \
            headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    now = now or datetime.now(timezone.utc)
    if scope.expires is not None:  # S3 checks a presigned URL's lifetime, not the clock skew
        if now > signed_at + timedelta(seconds=scope.expires):
            raise SigV4Error("AccessDenied", "Request has expired")
        if signed_at - now > MAX_SKEW:
            raise SigV4Error("AccessDenied", "Request is not valid yet")
    elif abs(now - signed_at) > MAX_SKEW:
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
    if presigned:
        if scope.service != "s3":
            raise SigV4Error("IncompleteSignature", "Only S3 accepts query-string authentication here.")
        url, headers = _without_signature(url), {k: v for k, v in headers.items() if k != "x-amz-content-sha256"}
    aws_request = AWSRequest(method=method, url=url, headers=dict(headers), data=body or b"")
    aws_request.context["timestamp"] = amz_date
    signer_cls = _ReceivedPresignedS3Signer if presigned else \
        _ReceivedS3RequestSigner if scope.service == "s3" else _ReceivedRequestSigner
    signer = signer_cls(Credentials(scope.key, secret), scope.service, scope.region, scope.signed)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, scope.signature):
        raise SigV4Error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                  "signature you provided.")
    return scope
