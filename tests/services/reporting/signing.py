"""Signing requests to the Reporting API as a client does: botocore's SigV4 signer, service `reporting`."""
from __future__ import annotations

import io
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eucadb.services.keys import IssuedKey

REGION = "us-east-1"     # the default serve.region (= cloud.region)


def signed_headers(key: IssuedKey | None, method: str, url: str, body: bytes | None = None,
                   region: str = REGION, headers: dict | None = None) -> dict[str, str]:
    """The headers of a request signed with `key` (none added when `key` is None: unsigned)."""
    headers = dict(headers or {})
    if key is None:
        return headers
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "reporting", region).add_auth(request)
    return dict(request.headers.items())


def environ(key: IssuedKey | None, method: str, path: str, query: str = "", body: bytes = b"") -> dict:
    """A WSGI environ for an in-process call, signed with `key` for host 127.0.0.1."""
    url = f"http://127.0.0.1{path}" + (f"?{query}" if query else "")
    env = {"REQUEST_METHOD": method, "PATH_INFO": urlsplit(url).path, "QUERY_STRING": query,
           "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}
    for name, value in signed_headers(key, method, url, body).items():
        if name.lower() != "host":
            env["HTTP_" + name.upper().replace("-", "_")] = value
    return env
