"""Object operations of the embedded S3 (s3.py): Put (and Copy), Get/Head with ranges and
preconditions, Delete. Bodies stream both ways; nothing is committed before every digest matched.
"""
from __future__ import annotations

import email.utils
import os
import time
from dataclasses import replace
from typing import BinaryIO, Callable, Iterator
from urllib.parse import unquote

from eucadb.cloud.local.s3_http import (RESPONSE_OVERRIDES, MAX_OBJECT, Request, Response, check_key,
                                        check_overwrite, checksum_headers, copy_range, http_date, iso, receive,
                                        template, write_headers)
from eucadb.cloud.local.s3_store import ObjectMeta, Store
from eucadb.cloud.local.s3_wire import BLOCK, RequestBody, S3Error, b64, parse_range, to_xml

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


def _matches(value: str, etag: str) -> bool:
    tags = {t.strip().strip('"') for t in value.split(",")}
    return etag in tags or "*" in tags


def _modified_since(value: str, meta: ObjectMeta) -> bool | None:
    """None for an unparseable date, which HTTP says to ignore."""
    try:
        return int(meta.last_modified) > email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _conditions(req: Request, meta: ObjectMeta) -> int | None:
    """RFC 7232 as S3 applies it: 412 or 304 when a precondition fails, None to go on."""
    h = req.headers
    if "if-match" in h:
        if not _matches(h["if-match"], meta.etag):
            return 412
    elif "if-unmodified-since" in h and _modified_since(h["if-unmodified-since"], meta):
        return 412
    if "if-none-match" in h:
        if _matches(h["if-none-match"], meta.etag):
            return 304
    elif "if-modified-since" in h and _modified_since(h["if-modified-since"], meta) is False:
        return 304
    return None


def put_object(store: Store, req: Request) -> Response:
    if "x-amz-copy-source" in req.headers:
        return copy_object(store, req)
    store.bucket(req.bucket)  # before reading a body that has nowhere to go
    check_key(req)
    base = template(req, RequestBody(req.environ, req.headers))
    check_overwrite(store, req)
    got = receive(store, req, MAX_OBJECT)
    checksums = {got.algorithm: b64(got.digests.checksum(got.algorithm))} if got.algorithm else {}
    meta = replace(base, size=got.digests.size, etag=got.digests.md5.hexdigest(), last_modified=time.time(),
                   checksums=checksums, checksum_type="FULL_OBJECT" if checksums else None)
    try:
        check_overwrite(store, req)
        meta = store.commit_object(req.bucket, meta, got.path)
    except BaseException:
        store.discard(got.path)
        raise
    return Response(200, [*write_headers(meta), ("Content-Length", "0")])




def copy_object(store: Store, req: Request) -> Response:
    source = unquote(req.headers["x-amz-copy-source"]).lstrip("/")
    source, _, version = source.partition("?")
    if version and version != "versionId=null":
        raise S3Error("NotImplemented", "the embedded S3 keeps no object versions: copy without versionId")
    src_bucket, _, src_key = source.partition("/")
    store.bucket(req.bucket)
    check_key(req)
    replace_meta = req.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    if (src_bucket, src_key) == (req.bucket, req.key) and not replace_meta:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location or "
                      "encryption attributes.")
    src, f = store.open(src_bucket, src_key)
    path, out = store.temp_file()
    try:
        with f, out:
            copy_range(f, out, 0, src.size)
            out.flush()
            os.fsync(out.fileno())
        base = template(req) if replace_meta else src
        meta = replace(base, key=req.key, size=src.size, etag=src.etag, last_modified=time.time(),
                       checksums=src.checksums, checksum_type=src.checksum_type, parts=src.parts)
        meta = store.commit_object(req.bucket, meta, path)
    except BaseException:
        store.discard(path)
        raise
    return Response.xml(to_xml("CopyObjectResult", [("LastModified", iso(meta.last_modified)),
                                                    ("ETag", f'"{meta.etag}"')]))


def _object_headers(meta: ObjectMeta, req: Request) -> list[tuple[str, str]]:
    headers = [("ETag", f'"{meta.etag}"'), ("Last-Modified", http_date(meta.last_modified)),
               ("Accept-Ranges", "bytes"), ("Content-Type", meta.content_type)]
    headers += [(name, value) for name, value in meta.headers.items()]
    headers += [(f"x-amz-meta-{name}", value) for name, value in meta.metadata.items()]
    if meta.parts:
        headers.append(("x-amz-mp-parts-count", str(meta.parts)))
    overrides = {RESPONSE_OVERRIDES[k]: v for k, v in req.query.items() if k in RESPONSE_OVERRIDES}
    return [(n, v) for n, v in headers if n not in overrides] + list(overrides.items())


def get_object(store: Store, req: Request) -> Response:
    meta, f = store.open(req.bucket, req.key)
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
                headers += checksum_headers(meta)
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


def delete_object(store: Store, req: Request) -> Response:
    store.bucket(req.bucket)
    store.delete(req.bucket, req.key)
    return Response(204)
