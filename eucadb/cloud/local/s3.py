"""The embedded cloud's S3: a WSGI app the gateway hands every SigV4 request for service `s3`.

Why not moto's S3: it keeps objects in the API process's memory, so they die with it and a WAL
archive of GiBs would be held in RAM. Here objects live on disk under `<cloud.data_dir>/s3/`
(s3_store.py), bodies stream through in 1 MiB blocks both ways, and the wire is S3's own
(s3_wire.py): path-style addressing, XML errors, ETags, Content-MD5 / SHA-256 / flexible checksums
verified, aws-chunked bodies decoded. Bucket policies are stored, not yet evaluated.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator
from urllib.parse import parse_qs, quote_plus, unquote

from eucadb.cloud.local.s3_store import ObjectMeta, Store, Upload
from eucadb.cloud.local.s3_wire import (BLOCK, NS, Digests, Expected, RequestBody, S3Error, b64, checksum_algorithm,
                                        composite, error_xml, expected_from, new_request_id, parse_range,
                                        parse_xml, status_line, to_xml)

log = logging.getLogger(__name__)
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
SUBRESOURCES = ("uploadId", "uploads", "delete", "policy", "location")
UNSUPPORTED = ("acl", "versioning", "versions", "versionId", "tagging", "cors", "lifecycle", "website", "logging",
               "notification", "replication", "encryption", "object-lock", "legal-hold", "retention", "torrent",
               "restore", "select", "accelerate", "analytics", "inventory", "metrics", "intelligent-tiering",
               "ownershipControls", "publicAccessBlock", "requestPayment", "attributes", "partNumber")


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
def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _copy(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
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


class FileRange:
    """A WSGI body streaming `length` bytes of an open file from `offset`, closing it at the end."""

    def __init__(self, f: BinaryIO, offset: int, length: int):
        self.f, self.offset, self.length = f, offset, length

    def __iter__(self) -> Iterator[bytes]:
        self.f.seek(self.offset)
        remaining = self.length
        while remaining > 0:
            data = self.f.read(min(BLOCK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data

    def close(self) -> None:
        self.f.close()


def _template(req: Request, body: RequestBody | None = None) -> ObjectMeta:
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


def _check_key(req: Request) -> None:
    if len(req.key.encode("utf-8")) > MAX_KEY:
        raise S3Error("KeyTooLongError", Size=str(len(req.key.encode("utf-8"))), MaxSizeAllowed=str(MAX_KEY))


@dataclass
class Received:
    path: Path
    digests: Digests
    algorithm: str | None  # the flexible checksum the object keeps


def _receive(store: Store, req: Request, limit: int, algorithm: str | None = None) -> Received:
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
        _take_trailers(body, exp)
        digests.verify(exp)
    except BaseException:
        store.discard(path)
        raise
    keep = algorithm or next(iter(sorted(exp.checksums)), None) or (checksum_algorithm(sdk) if sdk else None)
    return Received(path, digests, keep)


def _take_trailers(body: RequestBody, exp: Expected) -> None:
    for name, value in body.trailers.items():
        if name.startswith("x-amz-checksum-"):
            exp.checksums[checksum_algorithm(name[len("x-amz-checksum-"):])] = value
    if exp.trailer and exp.trailer not in exp.checksums:
        raise S3Error("InvalidRequest", f"x-amz-trailer announced x-amz-checksum-{exp.trailer.lower()} "
                                        "but the body did not end with it")


def _read_document(req: Request, limit: int, digest_required: bool = False) -> bytes:
    """A small request body (XML, JSON), its digests verified like an object's."""
    body = RequestBody(req.environ, req.headers)
    if body.raw is None:
        return b""
    exp = expected_from(req.headers)
    if digest_required and exp.md5 is None and not exp.checksums and not exp.trailer:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    data = body.read_small(limit)
    _take_trailers(body, exp)
    digests = Digests(exp.sha256 is not None, set(exp.checksums))
    digests.update(data)
    digests.verify(exp)
    return data


def _checksum_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    headers = [(f"x-amz-checksum-{alg.lower()}", value) for alg, value in meta.checksums.items()]
    return headers + ([("x-amz-checksum-type", meta.checksum_type)] if headers and meta.checksum_type else [])


def _write_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    sse = meta.headers.get("x-amz-server-side-encryption")
    return [("ETag", f'"{meta.etag}"'), *_checksum_headers(meta),
            *([("x-amz-server-side-encryption", sse)] if sse else [])]


def _conditions(req: Request, meta: ObjectMeta) -> int | None:
    """RFC 7232 as S3 applies it: 412 or 304 when a precondition fails, None to go on."""
    h = req.headers
    tags = lambda v: {t.strip().strip('"') for t in v.split(",")}  # noqa: E731
    since = lambda v: email.utils.parsedate_to_datetime(v).timestamp()  # noqa: E731
    try:
        if "if-match" in h and meta.etag not in tags(h["if-match"]) and "*" not in tags(h["if-match"]):
            return 412
        if "if-match" not in h and "if-unmodified-since" in h and int(meta.last_modified) > since(h["if-unmodified-since"]):
            return 412
        if "if-none-match" in h and (meta.etag in tags(h["if-none-match"]) or "*" in tags(h["if-none-match"])):
            return 304
        if "if-none-match" not in h and "if-modified-since" in h and int(meta.last_modified) <= since(h["if-modified-since"]):
            return 304
    except (TypeError, ValueError):  # an unparseable date is ignored, as HTTP says
        return None
    return None


# bucket operations -----------------------------------------------------------------------------------
def list_buckets(app: "S3App", req: Request) -> Response:
    buckets = [("Bucket", [("Name", b.name), ("CreationDate", _iso(b.created)), ("BucketRegion", b.region)])
               for b in app.store.list_buckets()]
    return Response.xml(to_xml("ListAllMyBucketsResult", [("Owner", OWNER), ("Buckets", buckets)]))


def create_bucket(app: "S3App", req: Request) -> Response:
    region = req.region
    document = _read_document(req, MAX_POLICY)
    if document.strip():
        node = parse_xml(document, "CreateBucketConfiguration").find("LocationConstraint")
        region = node.text if node is not None and node.text else region
    if not app.store.create_bucket(req.bucket, region):
        if req.region == "us-east-1":  # S3's legacy answer in North Virginia: success, again
            return Response(200, [("Location", f"/{req.bucket}"), ("Content-Length", "0")])
        raise S3Error("BucketAlreadyOwnedByYou", BucketName=req.bucket)
    return Response(200, [("Location", f"/{req.bucket}"), ("Content-Length", "0")])


def head_bucket(app: "S3App", req: Request) -> Response:
    bucket = app.store.bucket(req.bucket)
    return Response(200, [("x-amz-bucket-region", bucket.region), ("Content-Length", "0")])


def delete_bucket(app: "S3App", req: Request) -> Response:
    app.store.delete_bucket(req.bucket)
    return Response(204)


def get_location(app: "S3App", req: Request) -> Response:
    region = app.store.bucket(req.bucket).region
    root = ET.Element("LocationConstraint", xmlns=NS)
    root.text = None if region == "us-east-1" else region  # S3 answers us-east-1 as empty
    return Response.xml(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def put_policy(app: "S3App", req: Request) -> Response:
    app.store.bucket(req.bucket)
    policy = _read_document(req, MAX_POLICY)
    try:
        if not policy.lstrip().startswith(b"{"):
            raise ValueError
        json.loads(policy)
    except ValueError:
        raise S3Error("MalformedPolicy") from None
    app.store.put_policy(req.bucket, policy)
    return Response(204)


def get_policy(app: "S3App", req: Request) -> Response:
    policy = app.store.policy(req.bucket)
    return Response(200, [("Content-Type", "application/json"), ("Content-Length", str(len(policy)))], [policy])


def delete_policy(app: "S3App", req: Request) -> Response:
    app.store.delete_policy(req.bucket)
    return Response(204)


_TOKEN_MARK = b"eucadb-s3:"


def _token(after: str) -> str:
    """A continuation token: opaque to clients, the last key or common prefix answered."""
    return base64.urlsafe_b64encode(_TOKEN_MARK + after.encode("utf-8")).decode()


def _untoken(token: str) -> str:
    try:
        raw = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        if not raw.startswith(_TOKEN_MARK):
            raise ValueError(token)
        return raw[len(_TOKEN_MARK):].decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token") from None


def list_objects(app: "S3App", req: Request) -> Response:
    """ListObjectsV2 (list-type=2) and the original ListObjects: one walk over the sorted keys."""
    app.store.bucket(req.bucket)
    v2 = req.query.get("list-type") == "2"
    q = req.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = req.int_param("max-keys", 1000, 0, 2**31 - 1)
    encode = q.get("encoding-type")
    if encode not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type")
    enc = (lambda s: quote_plus(s, safe="/")) if encode else (lambda s: s)  # noqa: E731
    if v2 and "continuation-token" in q:
        after = _untoken(q["continuation-token"])
    else:
        after = q.get("start-after" if v2 else "marker", "")
    contents, prefixes, last, truncated = [], [], "", False
    skip_prefix = after if delimiter and after.endswith(delimiter) and after.startswith(prefix) else None
    for meta in app.store.keys_after(req.bucket, after, prefix):
        if skip_prefix and meta.key.startswith(skip_prefix):
            continue
        cut = meta.key.find(delimiter, len(prefix)) if delimiter else -1
        entry = meta.key[:cut + len(delimiter)] if cut >= 0 else None
        if entry is not None and prefixes and prefixes[-1] == entry:
            continue
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        if entry is not None:
            prefixes.append(entry)
            skip_prefix, last = entry, entry
        else:
            contents.append(meta)
            last = meta.key
    fields: list[tuple[str, object]] = [("Name", req.bucket), ("Prefix", enc(prefix))]
    if v2:
        token = q.get("continuation-token")
        fields += [("KeyCount", len(contents) + len(prefixes)), ("MaxKeys", max_keys),
                   ("Delimiter", enc(delimiter) if delimiter else None), ("IsTruncated", truncated),
                   ("ContinuationToken", token),
                   ("NextContinuationToken", _token(last) if truncated else None),
                   ("StartAfter", enc(q["start-after"]) if "start-after" in q else None)]
    else:
        fields += [("Marker", enc(q.get("marker", ""))), ("MaxKeys", max_keys),
                   ("Delimiter", enc(delimiter) if delimiter else None), ("IsTruncated", truncated),
                   ("NextMarker", enc(last) if truncated and delimiter else None)]
    fields += [("EncodingType", encode)]
    fields += [("Contents", [("Key", enc(m.key)), ("LastModified", _iso(m.last_modified)), ("ETag", f'"{m.etag}"'),
                             *[("ChecksumAlgorithm", a) for a in m.checksums],
                             *([("ChecksumType", m.checksum_type)] if m.checksums else []),
                             ("Size", m.size), *([("Owner", OWNER)] if not v2 or q.get("fetch-owner") == "true" else []),
                             ("StorageClass", m.headers.get("x-amz-storage-class", "STANDARD"))])
               for m in contents]
    fields += [("CommonPrefixes", [("Prefix", enc(p))]) for p in prefixes]
    return Response.xml(to_xml("ListBucketResult", fields))


def delete_objects(app: "S3App", req: Request) -> Response:
    app.store.bucket(req.bucket)
    root = parse_xml(_read_document(req, 2 << 20, digest_required=True), "Delete")
    objects = root.findall("Object")
    if not objects or len(objects) > 1000:
        raise S3Error("MalformedXML")
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    results: list[tuple[str, object]] = []
    for obj in objects:
        key = obj.findtext("Key")
        if key is None:
            raise S3Error("MalformedXML")
        if len(key.encode("utf-8")) > MAX_KEY:
            results.append(("Error", [("Key", key), ("Code", "KeyTooLongError"), ("Message", "Your key is too long")]))
            continue
        app.store.delete(req.bucket, key)
        if not quiet:
            results.append(("Deleted", [("Key", key)]))
    return Response.xml(to_xml("DeleteResult", results))


# object operations -----------------------------------------------------------------------------------
def put_object(app: "S3App", req: Request) -> Response:
    if "x-amz-copy-source" in req.headers:
        return copy_object(app, req)
    app.store.bucket(req.bucket)  # before reading a body that has nowhere to go
    _check_key(req)
    template = _template(req, RequestBody(req.environ, req.headers))
    _check_overwrite(app, req)
    got = _receive(app.store, req, MAX_OBJECT)
    checksums = {got.algorithm: b64(got.digests.checksum(got.algorithm))} if got.algorithm else {}
    meta = replace(template, size=got.digests.size, etag=got.digests.md5.hexdigest(), last_modified=time.time(),
                   checksums=checksums, checksum_type="FULL_OBJECT" if checksums else None)
    try:
        _check_overwrite(app, req)
        meta = app.store.commit_object(req.bucket, meta, got.path)
    except BaseException:
        app.store.discard(got.path)
        raise
    return Response(200, [*_write_headers(meta), ("Content-Length", "0")])


def _check_overwrite(app: "S3App", req: Request) -> None:
    """Conditional writes: If-None-Match: * refuses to replace an existing key."""
    if req.headers.get("if-none-match", "").strip() == "*":
        try:
            app.store.head(req.bucket, req.key)
        except S3Error:
            return
        raise S3Error("PreconditionFailed", Condition="If-None-Match")


def copy_object(app: "S3App", req: Request) -> Response:
    source = unquote(req.headers["x-amz-copy-source"]).lstrip("/")
    source, _, version = source.partition("?")
    if version and version != "versionId=null":
        raise S3Error("NotImplemented", "the embedded S3 keeps no object versions: copy without versionId")
    src_bucket, _, src_key = source.partition("/")
    app.store.bucket(req.bucket)
    _check_key(req)
    replace_meta = req.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    if (src_bucket, src_key) == (req.bucket, req.key) and not replace_meta:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location or "
                      "encryption attributes.")
    src, f = app.store.open(src_bucket, src_key)
    path, out = app.store.temp_file()
    try:
        with f, out:
            _copy(f, out, 0, src.size)
            out.flush()
            os.fsync(out.fileno())
        base = _template(req) if replace_meta else src
        meta = replace(base, key=req.key, size=src.size, etag=src.etag, last_modified=time.time(),
                       checksums=src.checksums, checksum_type=src.checksum_type, parts=src.parts)
        meta = app.store.commit_object(req.bucket, meta, path)
    except BaseException:
        app.store.discard(path)
        raise
    return Response.xml(to_xml("CopyObjectResult", [("LastModified", _iso(meta.last_modified)),
                                                    ("ETag", f'"{meta.etag}"')]))


def _object_headers(meta: ObjectMeta, req: Request) -> list[tuple[str, str]]:
    headers = [("ETag", f'"{meta.etag}"'), ("Last-Modified", _http_date(meta.last_modified)),
               ("Accept-Ranges", "bytes"), ("Content-Type", meta.content_type)]
    headers += [(name, value) for name, value in meta.headers.items()]
    headers += [(f"x-amz-meta-{name}", value) for name, value in meta.metadata.items()]
    if meta.parts:
        headers.append(("x-amz-mp-parts-count", str(meta.parts)))
    overrides = {RESPONSE_OVERRIDES[k]: v for k, v in req.query.items() if k in RESPONSE_OVERRIDES}
    return [(n, v) for n, v in headers if n not in overrides] + list(overrides.items())


def get_object(app: "S3App", req: Request) -> Response:
    meta, f = app.store.open(req.bucket, req.key)
    try:
        headers = _object_headers(meta, req)
        status = _conditions(req, meta)
        if status == 412:
            raise S3Error("PreconditionFailed", Condition="If-Match / If-Unmodified-Since")
        if status == 304:
            f.close()
            return Response(304, [h for h in headers if h[0] in ("ETag", "Last-Modified")])
        wanted = parse_range(req.headers["range"], meta.size) if "range" in req.headers else None
        if wanted is None:
            if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
                headers += _checksum_headers(meta)
            headers.append(("Content-Length", str(meta.size)))
            if req.method == "HEAD":
                f.close()
                return Response(200, headers)
            wrapper: Callable | None = req.environ.get("wsgi.file_wrapper")
            return Response(200, headers, wrapper(f, BLOCK) if wrapper else FileRange(f, 0, meta.size))
        first, last = wanted
        headers += [("Content-Range", f"bytes {first}-{last}/{meta.size}"), ("Content-Length", str(last - first + 1))]
        if req.method == "HEAD":
            f.close()
            return Response(206, headers)
        return Response(206, headers, FileRange(f, first, last - first + 1))
    except BaseException:
        f.close()
        raise


def delete_object(app: "S3App", req: Request) -> Response:
    app.store.bucket(req.bucket)
    app.store.delete(req.bucket, req.key)
    return Response(204)


# multipart uploads -----------------------------------------------------------------------------------
def create_upload(app: "S3App", req: Request) -> Response:
    app.store.bucket(req.bucket)
    _check_key(req)
    algorithm = req.headers.get("x-amz-checksum-algorithm")
    algorithm = checksum_algorithm(algorithm) if algorithm else None
    if req.headers.get("x-amz-checksum-type", "COMPOSITE").upper() != "COMPOSITE":
        raise S3Error("NotImplemented", "the embedded S3 computes COMPOSITE multipart checksums only "
                                        "(x-amz-checksum-type FULL_OBJECT is not supported)")
    upload = app.store.create_upload(req.bucket, req.key, _template(req), algorithm)
    extra = [("x-amz-checksum-algorithm", algorithm), ("x-amz-checksum-type", "COMPOSITE")] if algorithm else []
    response = Response.xml(to_xml("InitiateMultipartUploadResult", [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id)]))
    response.headers += extra
    return response


def upload_part(app: "S3App", req: Request) -> Response:
    if "x-amz-copy-source" in req.headers:
        raise S3Error("NotImplemented", "UploadPartCopy is not supported by the embedded S3: upload the bytes")
    if not re.fullmatch(r"\d{1,5}", req.query.get("partNumber", "")) or not 1 <= int(req.query["partNumber"]) <= MAX_PARTS:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                      ArgumentName="partNumber", ArgumentValue=req.query.get("partNumber", ""))
    number = int(req.query["partNumber"])
    upload = app.store.upload(req.bucket, req.query["uploadId"], req.key)
    got = _receive(app.store, req, MAX_OBJECT, upload.algorithm)
    checksums = {got.algorithm: b64(got.digests.checksum(got.algorithm))} if got.algorithm else {}
    meta = ObjectMeta(key=str(number), size=got.digests.size, etag=got.digests.md5.hexdigest(),
                      last_modified=time.time(), checksums=checksums)
    try:
        app.store.commit_part(req.bucket, upload.upload_id, number, meta, got.path)
    except BaseException:
        app.store.discard(got.path)
        raise
    return Response(200, [*_write_headers(meta), ("Content-Length", "0")])


def _chosen_parts(req: Request, upload: Upload, stored: dict[int, ObjectMeta]) -> list[ObjectMeta]:
    """The parts CompleteMultipartUpload names, checked as S3 checks them."""
    root = parse_xml(_read_document(req, 2 << 20), "CompleteMultipartUpload")
    listed = root.findall("Part")
    if not listed:
        raise S3Error("MalformedXML")
    chosen: list[ObjectMeta] = []
    previous = 0
    for node in listed:
        number_text, etag = (node.findtext("PartNumber") or "").strip(), (node.findtext("ETag") or "").strip().strip('"')
        if not number_text.isdigit():
            raise S3Error("MalformedXML")
        number = int(number_text)
        if number <= previous:
            raise S3Error("InvalidPartOrder", UploadId=upload.upload_id)
        previous = number
        part = stored.get(number)
        if part is None or part.etag != etag:
            raise S3Error("InvalidPart", UploadId=upload.upload_id, PartNumber=str(number), ETag=etag)
        for algorithm, value in part.checksums.items():
            given = node.findtext(f"Checksum{algorithm}")
            if given is not None and given.strip() != value:
                raise S3Error("InvalidPart", f"The {algorithm} checksum of part {number} does not match the part "
                              "uploaded", UploadId=upload.upload_id, PartNumber=str(number))
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART:
            raise S3Error("EntityTooSmall", ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART),
                          PartNumber=part.key, ETag=f'"{part.etag}"')
    return chosen


def complete_upload(app: "S3App", req: Request) -> Response:
    upload = app.store.upload(req.bucket, req.query["uploadId"], req.key)
    chosen = _chosen_parts(req, upload, app.store.parts(req.bucket, upload.upload_id))
    _check_overwrite(app, req)
    n = len(chosen)
    etag = composite("MD5", [bytes.fromhex(p.etag) for p in chosen]).hex() + f"-{n}"
    checksums = {}
    if upload.algorithm:
        digests = [base64.b64decode(p.checksums[upload.algorithm]) for p in chosen]
        checksums[upload.algorithm] = b64(composite(upload.algorithm, digests)) + f"-{n}"
    path, out = app.store.temp_file()
    try:
        with out:
            for part in chosen:
                with open(app.store.part_path(req.bucket, upload.upload_id, part), "rb") as f:
                    _copy(f, out, 0, part.size)
            out.flush()
            os.fsync(out.fileno())
        meta = replace(upload.template, size=sum(p.size for p in chosen), etag=etag, last_modified=time.time(),
                       checksums=checksums, checksum_type="COMPOSITE" if checksums else None, parts=n)
        meta = app.store.commit_object(req.bucket, meta, path)
    except BaseException:
        app.store.discard(path)
        raise
    app.store.finish_upload(req.bucket, upload.upload_id)
    fields: list[tuple[str, object]] = [
        ("Location", f"{req.environ.get('wsgi.url_scheme', 'http')}://{req.headers.get('host', '')}{req.resource}"),
        ("Bucket", req.bucket), ("Key", req.key), ("ETag", f'"{etag}"')]
    fields += [(f"Checksum{a}", v) for a, v in checksums.items()]
    fields += [("ChecksumType", "COMPOSITE")] if checksums else []
    return Response.xml(to_xml("CompleteMultipartUploadResult", fields))


def abort_upload(app: "S3App", req: Request) -> Response:
    upload = app.store.upload(req.bucket, req.query["uploadId"], req.key)
    app.store.finish_upload(req.bucket, upload.upload_id)
    return Response(204)


def list_parts(app: "S3App", req: Request) -> Response:
    upload = app.store.upload(req.bucket, req.query["uploadId"], req.key)
    marker = req.int_param("part-number-marker", 0, 0, MAX_PARTS)
    max_parts = req.int_param("max-parts", 1000, 0, 2**31 - 1)
    parts = [p for n, p in sorted(app.store.parts(req.bucket, upload.upload_id).items()) if n > marker]
    shown, truncated = parts[:max_parts], len(parts) > max_parts
    fields: list[tuple[str, object]] = [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id),
        ("PartNumberMarker", marker), ("NextPartNumberMarker", shown[-1].key if shown else marker),
        ("MaxParts", max_parts), ("IsTruncated", truncated), ("StorageClass", "STANDARD"),
        ("ChecksumAlgorithm", upload.algorithm)]
    fields += [("Part", [("PartNumber", p.key), ("LastModified", _iso(p.last_modified)), ("ETag", f'"{p.etag}"'),
                         ("Size", p.size), *[(f"Checksum{a}", v) for a, v in p.checksums.items()]]) for p in shown]
    return Response.xml(to_xml("ListPartsResult", fields))


def list_uploads(app: "S3App", req: Request) -> Response:
    prefix = req.query.get("prefix", "")
    max_uploads = req.int_param("max-uploads", 1000, 0, 1000)
    key_marker = req.query.get("key-marker", "")
    uploads = [u for u in app.store.list_uploads(req.bucket) if u.key.startswith(prefix) and u.key > key_marker]
    shown, truncated = uploads[:max_uploads], len(uploads) > max_uploads
    fields: list[tuple[str, object]] = [
        ("Bucket", req.bucket), ("KeyMarker", key_marker), ("UploadIdMarker", ""), ("Prefix", prefix),
        ("NextKeyMarker", shown[-1].key if truncated else None),
        ("NextUploadIdMarker", shown[-1].upload_id if truncated else None),
        ("MaxUploads", max_uploads), ("IsTruncated", truncated)]
    fields += [("Upload", [("Key", u.key), ("UploadId", u.upload_id), ("Initiator", OWNER), ("Owner", OWNER),
                           ("StorageClass", "STANDARD"), ("Initiated", _iso(u.initiated)),
                           ("ChecksumAlgorithm", u.algorithm)]) for u in shown]
    return Response.xml(to_xml("ListMultipartUploadsResult", fields))


Handler = Callable[["S3App", Request], Response]
ROUTES: dict[tuple[str, str, str | None], Handler] = {
    ("GET", "service", None): list_buckets,
    ("PUT", "bucket", None): create_bucket,
    ("HEAD", "bucket", None): head_bucket,
    ("DELETE", "bucket", None): delete_bucket,
    ("GET", "bucket", None): list_objects,
    ("GET", "bucket", "location"): get_location,
    ("GET", "bucket", "uploads"): list_uploads,
    ("POST", "bucket", "delete"): delete_objects,
    ("PUT", "bucket", "policy"): put_policy,
    ("GET", "bucket", "policy"): get_policy,
    ("DELETE", "bucket", "policy"): delete_policy,
    ("PUT", "object", None): put_object,
    ("GET", "object", None): get_object,
    ("HEAD", "object", None): get_object,
    ("DELETE", "object", None): delete_object,
    ("POST", "object", "uploads"): create_upload,
    ("PUT", "object", "uploadId"): upload_part,
    ("POST", "object", "uploadId"): complete_upload,
    ("DELETE", "object", "uploadId"): abort_upload,
    ("GET", "object", "uploadId"): list_parts,
}


class S3App:
    """WSGI entry point: route by (method, resource kind, subresource), answer S3's XML errors."""

    def __init__(self, root: Path, region: str):
        self.store = Store(root)
        self.region = region

    def route(self, req: Request) -> Handler:
        kind = "object" if req.key else "bucket" if req.bucket else "service"
        unsupported = next((q for q in UNSUPPORTED if q in req.query and not (q == "partNumber" and "uploadId" in req.query)), None)
        if unsupported:
            raise S3Error("NotImplemented", f"the embedded S3 does not implement the ?{unsupported} subresource")
        sub = next((q for q in SUBRESOURCES if q in req.query), None)
        handler = ROUTES.get((req.method, kind, sub))
        if handler is None:
            raise S3Error("MethodNotAllowed" if any(k[1:] == (kind, sub) for k in ROUTES) else "NotImplemented",
                          Method=req.method, ResourceType=kind.upper())
        return handler

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = new_request_id()
        req = Request.parse(environ, self.region)
        try:
            response = self.route(req)(self, req)
        except S3Error as exc:
            response = self._error(req, exc, request_id)
        except OSError as exc:
            log.exception("S3 %s %s failed", req.method, req.resource)
            response = self._error(req, S3Error("InternalError", f"storage error: {exc.strerror or exc}"), request_id)
        headers = [*response.headers, ("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
        if not any(n.lower() == "content-length" for n, _ in headers) and response.status in (204, 304):
            headers.append(("Content-Length", "0"))
        start_response(status_line(response.status), headers)
        return response.body

    @staticmethod
    def _error(req: Request, exc: S3Error, request_id: str) -> Response:
        if req.method == "HEAD":  # no body: clients read the status
            return Response(exc.status, [("Content-Length", "0")])
        return Response.xml(error_xml(exc, req.resource, request_id), exc.status)

