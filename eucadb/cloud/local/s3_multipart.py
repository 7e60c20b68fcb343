"""Multipart uploads of the embedded S3 (s3.py): parts are stored like objects; completing checks
them as S3 does (order, ETags, checksums, 5 MiB minimum), concatenates them in the kernel and
commits one object whose ETag is the MD5 of the parts' MD5s plus "-N".
"""
from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import replace

from eucadb.cloud.local.s3_http import (MAX_OBJECT, MAX_PARTS, MIN_PART, OWNER, Request, Response, check_key,
                                        check_overwrite, copy_range, iso, read_document, receive, template,
                                        write_headers)
from eucadb.cloud.local.s3_store import ObjectMeta, Store, Upload
from eucadb.cloud.local.s3_wire import S3Error, b64, checksum_algorithm, composite, parse_xml, to_xml

def create_upload(store: Store, req: Request) -> Response:
    store.bucket(req.bucket)
    check_key(req)
    algorithm = req.headers.get("x-amz-checksum-algorithm")
    algorithm = checksum_algorithm(algorithm) if algorithm else None
    if req.headers.get("x-amz-checksum-type", "COMPOSITE").upper() != "COMPOSITE":
        raise S3Error("NotImplemented", "the embedded S3 computes COMPOSITE multipart checksums only "
                                        "(x-amz-checksum-type FULL_OBJECT is not supported)")
    upload = store.create_upload(req.bucket, req.key, template(req), algorithm)
    extra = [("x-amz-checksum-algorithm", algorithm), ("x-amz-checksum-type", "COMPOSITE")] if algorithm else []
    response = Response.xml(to_xml("InitiateMultipartUploadResult", [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id)]))
    response.headers += extra
    return response


def upload_part(store: Store, req: Request) -> Response:
    if "x-amz-copy-source" in req.headers:
        raise S3Error("NotImplemented", "UploadPartCopy is not supported by the embedded S3: upload the bytes")
    raw = req.query.get("partNumber", "")
    if not re.fullmatch(r"\d{1,5}", raw) or not 1 <= int(raw) <= MAX_PARTS:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                      ArgumentName="partNumber", ArgumentValue=req.query.get("partNumber", ""))
    number = int(req.query["partNumber"])
    upload = store.upload(req.bucket, req.query["uploadId"], req.key)
    got = receive(store, req, MAX_OBJECT, upload.algorithm)
    checksums = {got.algorithm: b64(got.digests.checksum(got.algorithm))} if got.algorithm else {}
    meta = ObjectMeta(key=str(number), size=got.digests.size, etag=got.digests.md5.hexdigest(),
                      last_modified=time.time(), checksums=checksums)
    try:
        store.commit_part(req.bucket, upload.upload_id, number, meta, got.path)
    except BaseException:
        store.discard(got.path)
        raise
    return Response(200, [*write_headers(meta), ("Content-Length", "0")])


def _chosen_parts(req: Request, upload: Upload, stored: dict[int, ObjectMeta]) -> list[ObjectMeta]:
    """The parts CompleteMultipartUpload names, checked as S3 checks them."""
    root = parse_xml(read_document(req, 2 << 20), "CompleteMultipartUpload")
    listed = root.findall("Part")
    if not listed:
        raise S3Error("MalformedXML")
    chosen: list[ObjectMeta] = []
    previous = 0
    for node in listed:
        number_text = (node.findtext("PartNumber") or "").strip()
        etag = (node.findtext("ETag") or "").strip().strip('"')
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


def complete_upload(store: Store, req: Request) -> Response:
    upload = store.upload(req.bucket, req.query["uploadId"], req.key)
    chosen = _chosen_parts(req, upload, store.parts(req.bucket, upload.upload_id))
    check_overwrite(store, req)
    n = len(chosen)
    etag = composite("MD5", [bytes.fromhex(p.etag) for p in chosen]).hex() + f"-{n}"
    checksums = {}
    if upload.algorithm:
        digests = [base64.b64decode(p.checksums[upload.algorithm]) for p in chosen]
        checksums[upload.algorithm] = b64(composite(upload.algorithm, digests)) + f"-{n}"
    path, out = store.temp_file()
    try:
        with out:
            for part in chosen:
                with open(store.part_path(req.bucket, upload.upload_id, part), "rb") as f:
                    copy_range(f, out, 0, part.size)
            out.flush()
            os.fsync(out.fileno())
        meta = replace(upload.template, size=sum(p.size for p in chosen), etag=etag, last_modified=time.time(),
                       checksums=checksums, checksum_type="COMPOSITE" if checksums else None, parts=n)
        meta = store.commit_object(req.bucket, meta, path)
    except BaseException:
        store.discard(path)
        raise
    store.finish_upload(req.bucket, upload.upload_id)
    fields: list[tuple[str, object]] = [
        ("Location", f"{req.environ.get('wsgi.url_scheme', 'http')}://{req.headers.get('host', '')}{req.resource}"),
        ("Bucket", req.bucket), ("Key", req.key), ("ETag", f'"{etag}"')]
    fields += [(f"Checksum{a}", v) for a, v in checksums.items()]
    fields += [("ChecksumType", "COMPOSITE")] if checksums else []
    return Response.xml(to_xml("CompleteMultipartUploadResult", fields))


def abort_upload(store: Store, req: Request) -> Response:
    upload = store.upload(req.bucket, req.query["uploadId"], req.key)
    store.finish_upload(req.bucket, upload.upload_id)
    return Response(204)


def list_parts(store: Store, req: Request) -> Response:
    upload = store.upload(req.bucket, req.query["uploadId"], req.key)
    marker = req.int_param("part-number-marker", 0, 0, MAX_PARTS)
    max_parts = req.int_param("max-parts", 1000, 0, 2**31 - 1)
    parts = [p for n, p in sorted(store.parts(req.bucket, upload.upload_id).items()) if n > marker]
    shown, truncated = parts[:max_parts], len(parts) > max_parts
    fields: list[tuple[str, object]] = [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id),
        ("PartNumberMarker", marker), ("NextPartNumberMarker", shown[-1].key if shown else marker),
        ("MaxParts", max_parts), ("IsTruncated", truncated), ("StorageClass", "STANDARD"),
        ("ChecksumAlgorithm", upload.algorithm)]
    fields += [("Part", [("PartNumber", p.key), ("LastModified", iso(p.last_modified)), ("ETag", f'"{p.etag}"'),
                         ("Size", p.size), *[(f"Checksum{a}", v) for a, v in p.checksums.items()]]) for p in shown]
    return Response.xml(to_xml("ListPartsResult", fields))


def list_uploads(store: Store, req: Request) -> Response:
    prefix = req.query.get("prefix", "")
    max_uploads = req.int_param("max-uploads", 1000, 0, 1000)
    key_marker = req.query.get("key-marker", "")
    uploads = [u for u in store.list_uploads(req.bucket) if u.key.startswith(prefix) and u.key > key_marker]
    shown, truncated = uploads[:max_uploads], len(uploads) > max_uploads
    fields: list[tuple[str, object]] = [
        ("Bucket", req.bucket), ("KeyMarker", key_marker), ("UploadIdMarker", ""), ("Prefix", prefix),
        ("NextKeyMarker", shown[-1].key if truncated else None),
        ("NextUploadIdMarker", shown[-1].upload_id if truncated else None),
        ("MaxUploads", max_uploads), ("IsTruncated", truncated)]
    fields += [("Upload", [("Key", u.key), ("UploadId", u.upload_id), ("Initiator", OWNER), ("Owner", OWNER),
                           ("StorageClass", "STANDARD"), ("Initiated", iso(u.initiated)),
                           ("ChecksumAlgorithm", u.algorithm)]) for u in shown]
    return Response.xml(to_xml("ListMultipartUploadsResult", fields))
