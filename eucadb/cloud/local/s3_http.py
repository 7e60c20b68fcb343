"""Requests and responses of the embedded S3 (s3.py) and what its handlers share: receiving a body
to a synced temp file with every digest checked, the headers a write answers, S3's limits.
"""
from __future__ import annotations

import email.utils
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable
from urllib.parse import parse_qs

from eucadb.cloud.local.s3_store import ObjectMeta, Store
from eucadb.cloud.local.s3_wire import (BLOCK, Digests, Expected, RequestBody, S3Error, checksum_algorithm,
                                        expected_from)

MAX_OBJECT = 5 << 30  # S3's single PUT and part limit (5 GiB)
MIN_PART = 5 << 20
MAX_PARTS = 10000
MAX_KEY = 1024
MAX_METADATA = 2048
MAX_POLICY = 20 << 10
OWNER = [("ID", "eucadb-embedded-cloud"), ("DisplayName", "eucadb")]
_REGION = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/s3/aws4_request")
STORED_HEADERS = ("cache-control", "content-disposition", "content-language", "expires",
                  "x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-website-redirect-location")
RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}


@dataclass


class Request:
    environ: dict
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    region: str

    @classmethod
    def parse(cls, environ: dict, default_region: str) -> "Request":
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", errors="replace")
        bucket, _, key = path.lstrip("/").partition("/")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        preserved = environ.get("moto.preserved_header_names", {})  # moto keeps underscored names
        headers = {}
        for name, value in environ.items():
            if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                spelled = preserved.get(name) or name[5 if name.startswith("HTTP_") else 0:].replace("_", "-")
                headers[spelled.lower()] = value
        match = _REGION.search(headers.get("authorization", ""))
        return cls(environ, environ.get("REQUEST_METHOD", "GET"), bucket, key, query, headers,
                   match.group(1) if match else default_region)

    @property
    def resource(self) -> str:
        return "/" + "/".join(p for p in (self.bucket, self.key) if p)

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
            raise S3Error("InvalidArgument", f"{name} must be an integer between {low} and {high}",
                          ArgumentName=name, ArgumentValue=raw)
        return int(raw)


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Iterable[bytes] = ()

    @classmethod
    def xml(cls, document: bytes, status: int = 200) -> "Response":
        return cls(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(document)))],
                   [document])


# helpers ---------------------------------------------------------------------------------------------
def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def copy_range(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
    """Copy a byte range between files in the kernel where it can (copy_file_range), else in blocks."""
    try:
        while length > 0:
            n = os.copy_file_range(src.fileno(), dst.fileno(), min(length, 1 << 30), offset)
            if n == 0:
                raise S3Error("InternalError", "a stored file is shorter than its metadata says")
            offset, length = offset + n, length - n
    except OSError:
        src.seek(offset)
        while length > 0:
            data = src.read(min(BLOCK, length))
            if not data:
                raise S3Error("InternalError", "a stored file is shorter than its metadata says") from None
            dst.write(data)
            length -= len(data)




def template(req: Request, body: RequestBody | None = None) -> ObjectMeta:
    """Content type, stored headers and user metadata a write gives its object."""
    metadata = {name[len("x-amz-meta-"):]: value for name, value in req.headers.items()
                if name.startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA:
        raise S3Error("MetadataTooLarge", MaxSizeAllowed=str(MAX_METADATA))
    headers = {name: req.headers[name] for name in STORED_HEADERS if name in req.headers}
    encoding = body.stored_encoding if body else req.headers.get("content-encoding")
    if encoding:
        headers["content-encoding"] = encoding
    if "x-amz-tagging" in req.headers:
        headers["x-amz-tagging-count"] = str(len(parse_qs(req.headers["x-amz-tagging"], keep_blank_values=True)))
    return ObjectMeta(key=req.key, size=0, etag="", last_modified=0.0, metadata=metadata, headers=headers,
                      content_type=req.headers.get("content-type") or "binary/octet-stream")


def check_key(req: Request) -> None:
    if len(req.key.encode("utf-8")) > MAX_KEY:
        raise S3Error("KeyTooLongError", Size=str(len(req.key.encode("utf-8"))), MaxSizeAllowed=str(MAX_KEY))


@dataclass
class Received:
    path: Path
    digests: Digests
    algorithm: str | None  # the flexible checksum the object keeps


def receive(store: Store, req: Request, limit: int, algorithm: str | None = None) -> Received:
    """Stream the request body to a synced temp file, verifying every digest the client gave."""
    body = RequestBody(req.environ, req.headers)
    body.require_length()
    declared = body.declared_length
    if declared is not None and declared > limit:
        raise S3Error("EntityTooLarge", ProposedSize=str(declared), MaxSizeAllowed=str(limit))
    exp = expected_from(req.headers)
    sdk = req.headers.get("x-amz-sdk-checksum-algorithm")
    wanted = {a for a in (*exp.checksums, exp.trailer, algorithm, checksum_algorithm(sdk) if sdk else None) if a}
    digests = Digests(exp.sha256 is not None, wanted)
    path, f = store.temp_file()
    try:
        with f:
            for block in body:
                digests.update(block)
                if digests.size > limit:
                    raise S3Error("EntityTooLarge", MaxSizeAllowed=str(limit))
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        take_trailers(body, exp)
        digests.verify(exp)
    except BaseException:
        store.discard(path)
        raise
    keep = algorithm or next(iter(sorted(exp.checksums)), None) or (checksum_algorithm(sdk) if sdk else None)
    return Received(path, digests, keep)


def take_trailers(body: RequestBody, exp: Expected) -> None:
    for name, value in body.trailers.items():
        if name.startswith("x-amz-checksum-"):
            exp.checksums[checksum_algorithm(name[len("x-amz-checksum-"):])] = value
    if exp.trailer and exp.trailer not in exp.checksums:
        raise S3Error("InvalidRequest", f"x-amz-trailer announced x-amz-checksum-{exp.trailer.lower()} "
                                        "but the body did not end with it")


def read_document(req: Request, limit: int, digest_required: bool = False) -> bytes:
    """A small request body (XML, JSON), its digests verified like an object's."""
    body = RequestBody(req.environ, req.headers)
    if body.raw is None:
        return b""
    exp = expected_from(req.headers)
    if digest_required and exp.md5 is None and not exp.checksums and not exp.trailer:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    data = body.read_small(limit)
    take_trailers(body, exp)
    digests = Digests(exp.sha256 is not None, set(exp.checksums))
    digests.update(data)
    digests.verify(exp)
    return data


def checksum_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    headers = [(f"x-amz-checksum-{alg.lower()}", value) for alg, value in meta.checksums.items()]
    return headers + ([("x-amz-checksum-type", meta.checksum_type)] if headers and meta.checksum_type else [])


def write_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    sse = meta.headers.get("x-amz-server-side-encryption")
    return [("ETag", f'"{meta.etag}"'), *checksum_headers(meta),
            *([("x-amz-server-side-encryption", sse)] if sse else [])]

def check_overwrite(store: Store, req: Request) -> None:
    """Conditional writes: If-None-Match: * refuses to replace an existing key."""
    if req.headers.get("if-none-match", "").strip() == "*":
        try:
            store.head(req.bucket, req.key)
        except S3Error:
            return
        raise S3Error("PreconditionFailed", Condition="If-None-Match")
