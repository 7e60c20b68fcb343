"""The embedded cloud authenticates and authorizes like a cloud: every request must be SigV4-signed
with a key the cloud issued (principals.py), and is then allowed only if the IAM policies that apply
— the caller's identity policies and the resource's policy (a secret's, a bucket's) — allow it
(authorize.py, iam_requests.py, one evaluator in policy.py).

Why here, in front of moto, rather than moto's own access control (INITIAL_NO_AUTH_ACTION_COUNT):
moto 5.2 checks the signature and then evaluates the caller's *identity* policies against resource
"*" for every service but IAM/STS/SQS, so any least-privilege statement naming a resource (eucadb's
instance policy: its own secret, volumes tagged with its deployment) denies what AWS allows; it
ignores resource policies, answers 500 to an unsigned request, does not cover our own S3, and
its switch is process-global. So this layer authenticates (one verifier, eucadb/sigv4.py, for
every service including S3) and authorizes with ARNs built per resource as AWS builds them.

Errors are AWS's own per protocol: an unknown key is EC2 `AuthFailure` 401, Query
`InvalidClientTokenId` 403, JSON `UnrecognizedClientException` 400, S3 `InvalidAccessKeyId` 403;
a wrong signature is `SignatureDoesNotMatch` (JSON: `InvalidSignatureException` 400). S3 also takes
presigned URLs (query-string SigV4, UNSIGNED-PAYLOAD): an expired one is `AccessDenied` "Request has
expired" 403, a malformed one (X-Amz-Expires over a week …) `AuthorizationQueryParametersError` 400,
and it is authorized as its signer, like a signed request. A refusal by
policy is EC2 `UnauthorizedOperation` 403, S3/IAM/STS/Auto Scaling `AccessDenied` 403, JSON
`AccessDeniedException` 400, each with AWS's sentence ("User: … is not authorized to perform: …").
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import quote

from moto.core import DEFAULT_ACCOUNT_ID

from eucadb import sigv4
from eucadb.logs import RateLimitedLog
from eucadb.cloud.local import authorize, faults, iam_requests
from eucadb.cloud.local.gateway import HEALTH_PATH, read_body
from eucadb.cloud.local.principals import Principal, lookup

log = logging.getLogger(__name__)
INVALID_KEY = "The security token included in the request is invalid."
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class Answer:
    code: str
    message: str
    status: int


# (protocol, sigv4 error code) -> what AWS answers; protocol "ec2" is EC2's own Query dialect
ANSWERS: dict[tuple[str, str], Answer] = {
    ("ec2", "InvalidClientTokenId"): Answer("AuthFailure", "AWS was not able to validate the provided "
                                                           "access credentials", 401),
    ("query", "InvalidClientTokenId"): Answer("InvalidClientTokenId", INVALID_KEY, 403),
    ("json", "InvalidClientTokenId"): Answer("UnrecognizedClientException", INVALID_KEY, 400),
    ("s3", "InvalidClientTokenId"): Answer("InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                                                                 "not exist in our records.", 403),
    ("ec2", "SignatureDoesNotMatch"): Answer("SignatureDoesNotMatch", BAD_SIGNATURE, 403),
    ("query", "SignatureDoesNotMatch"): Answer("SignatureDoesNotMatch", BAD_SIGNATURE, 403),
    ("json", "SignatureDoesNotMatch"): Answer("InvalidSignatureException", BAD_SIGNATURE, 400),
    ("s3", "SignatureDoesNotMatch"): Answer("SignatureDoesNotMatch", BAD_SIGNATURE, 403),
    ("s3", "MissingAuthenticationToken"): Answer("AccessDenied", "Access Denied", 403),
}
# status of the refusals that have no fixed wording (the verifier's message is AWS's)
STATUSES: dict[str, int] = {"AuthorizationQueryParametersError": 400}
# protocol -> how the service words a refusal by policy (the refusal's own sentence follows)
REFUSALS: dict[str, Answer] = {
    "ec2": Answer("UnauthorizedOperation", "You are not authorized to perform this operation. ", 403),
    "query": Answer("AccessDenied", "", 403),  # IAM, STS, Auto Scaling
    "json": Answer("AccessDeniedException", "", 400),  # Secrets Manager
    "s3": Answer("AccessDenied", "", 403),
}


def protocol_of(environ: dict, service: str) -> str:
    if service == "s3":
        return "s3"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if service == "ec2":
        return "ec2"
    if service or "Action=" in environ.get("QUERY_STRING", "") or \
            environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return "query"
    return "s3"  # unsigned, no action named: a REST (S3-style) request


def headers_of(environ: dict) -> dict[str, str]:
    """The request's headers, lower-case names, as the client signed them."""
    headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.lower().replace("_", "-")] = environ[name]
    return headers


def url_of(environ: dict) -> str:
    """The URL as sent (path still percent-encoded): what the client's signature covers."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        query = environ.get("QUERY_STRING", "")
        raw = quote(environ.get("PATH_INFO", "/"), safe="/~") + (f"?{query}" if query else "")
    return f"http://{environ.get('HTTP_HOST', 'localhost')}{raw}"


def error_answer(protocol: str, service: str, answer: Answer) -> tuple[str, str, bytes]:
    if protocol != "s3":
        return faults.error_response("json" if protocol == "json" else "query", service or "sts",
                                     answer.code, answer.message, answer.status)
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = answer.code
    ET.SubElement(root, "Message").text = answer.message
    return (f"{answer.status} {faults.REASONS.get(answer.status, 'Error')}", "application/xml",
            ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


class Authenticator:
    """WSGI layer in front of everything else: nothing unauthenticated reaches moto or S3."""

    def __init__(self, app: Callable, internal: dict[str, Principal],
                 bucket_policy: Callable[[str], str | None] = lambda bucket: None, authorize: bool = True):
        self.app, self.internal = app, internal
        self.bucket_policy = bucket_policy  # a bucket's policy document, None if it has none
        self.authorize = authorize  # False only to measure what evaluation costs (bench/)
        self.refusals = RateLimitedLog(log)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self.app(environ, start_response)
        headers = headers_of(environ)
        service = ""
        try:
            query = environ.get("QUERY_STRING", "")
            service = sigv4.parse_query(query)[0].service if "authorization" not in headers and \
                sigv4.is_presigned(query) else sigv4.parse(headers.get("authorization")).service
            protocol = protocol_of(environ, service)
            body = None if protocol == "s3" else read_body(environ)
            found: list[Principal] = []
            scope = sigv4.verify(environ.get("REQUEST_METHOD", "GET"), url_of(environ), headers, body,
                                 lambda claimed: self._secret(claimed, found))
        except sigv4.SigV4Error as exc:
            protocol = protocol_of(environ, service)
            answer = ANSWERS.get((protocol, exc.code), Answer(exc.code, str(exc), STATUSES.get(exc.code, 403)))
            log.info("refused %s request: %s", service or "unsigned", answer.code)
            return self._respond(start_response, *error_answer(protocol, service, answer))
        refused = self._refused(environ, scope, found[0], body)
        if refused:
            status, ctype, answer = refused
            return self._respond(start_response, status, ctype,
                                 b"" if environ.get("REQUEST_METHOD") == "HEAD" else answer)
        return self.app(environ, start_response)

    def _secret(self, scope: sigv4.Scope, found: list[Principal]) -> str | None:
        principal = lookup(scope.key, self.internal)
        if principal is None:
            return None
        if scope.token != principal.token:  # the header's, or a presigned URL's X-Amz-Security-Token
            raise sigv4.SigV4Error("InvalidClientTokenId", INVALID_KEY)
        found.append(principal)
        return principal.secret

    def _refused(self, environ: dict, scope: sigv4.Scope, principal: Principal,
                 body: bytes | None) -> tuple[str, str, bytes] | None:
        """The service's AccessDenied answer if the policies that apply refuse the request."""
        if not self.authorize:
            return None
        asked = iam_requests.asked(environ, scope.service, scope.region, DEFAULT_ACCOUNT_ID, body,
                                   self.bucket_policy)
        refusal = authorize.decide(principal, asked.checks, DEFAULT_ACCOUNT_ID)
        if refusal is None:
            return None
        protocol = protocol_of(environ, scope.service)
        answer = REFUSALS.get(protocol if protocol != "query" or scope.service != "ec2" else "ec2",
                              REFUSALS["query"])
        self.refusals.refused(f"{refusal.action} by {refusal.who}")
        return error_answer(protocol, scope.service, Answer(answer.code, answer.message + str(refusal),
                                                            answer.status))

    @staticmethod
    def _respond(start_response: Callable, status: str, ctype: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]
