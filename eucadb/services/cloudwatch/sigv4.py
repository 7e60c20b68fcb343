"""SigV4 verification of received requests, reusing botocore's canonical request and string to sign.

We rebuild the request as botocore would have signed it, restricted to the headers the client listed
in SignedHeaders, recompute the signature with the key's secret and compare in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone
from typing import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from eucadb.services.cloudwatch.errors import auth
from eucadb.services.cloudwatch.model import SERVICE
from eucadb.services.cloudwatch.protocols import HttpRequest

MAX_SKEW = timedelta(minutes=15)
AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;\-]+),\s*Signature=(?P<sig>[0-9a-f]{64})\s*$")


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's signer, but signing exactly the headers the client said it signed."""

    def __init__(self, credentials: Credentials, region: str, signed: list[str]):
        super().__init__(credentials, SERVICE, region)
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
        raise auth("IncompleteSignature", "X-Amz-Date must be in the format YYYYMMDD'T'HHMMSS'Z'.") from None


def verify(request: HttpRequest, secret_for: Callable[[str], str | None],
           now: datetime | None = None) -> str:
    """The access key id of a correctly signed request; ApiError (403) otherwise."""
    header = request.headers.get("authorization")
    if not header:
        raise auth("MissingAuthenticationToken", "Request is missing Authentication Token")
    match = AUTH_RE.match(header.strip())
    if not match:
        raise auth("IncompleteSignature", "Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
    amz_date = request.headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    now = now or datetime.now(timezone.utc)
    if abs(now - signed_at) > MAX_SKEW:
        raise auth("RequestExpired", f"Signature expired: {amz_date} is not within 15 minutes of "
                                     f"{now.strftime('%Y%m%dT%H%M%SZ')}.")
    signed = match["signed"].split(";")
    if "host" not in signed or match["date"] != amz_date[:8] or match["service"] != SERVICE:
        raise auth("IncompleteSignature", "The credential scope or signed headers are not valid.")
    secret = secret_for(match["key"])
    if secret is None:
        raise auth("InvalidClientTokenId", "The security token included in the request is invalid.")
    body_hash = request.headers.get("x-amz-content-sha256")
    if body_hash is not None and body_hash != hashlib.sha256(request.body).hexdigest():
        raise auth("SignatureDoesNotMatch", "The request body does not match X-Amz-Content-SHA256.")
    url = f"http://{request.headers.get('host', request.host)}{request.full_path}"
    if request.query:
        url += "?" + request.query
    aws_request = AWSRequest(method=request.method, url=url, headers=request.headers, data=request.body)
    aws_request.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(Credentials(match["key"], secret), match["region"], signed)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, match["sig"]):
        raise auth("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                            "signature you provided.")
    return match["key"]

