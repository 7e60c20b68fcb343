"""The embedded cloud's S3: a WSGI app the gateway hands every SigV4 request for service `s3`.

Why not moto's S3: it keeps objects in the API process's memory, so they die with it and a WAL
archive of GiBs would be held in RAM. Here objects live on disk under `<cloud.data_dir>/s3/`
(s3_store.py), bodies stream through in 1 MiB blocks both ways, and the wire is S3's own
(s3_wire.py): path-style addressing, XML errors, ETags, Content-MD5 / SHA-256 / flexible checksums
verified, aws-chunked bodies decoded. Bucket policies are stored here and evaluated in front
(auth.py: the bucket policy is the resource policy of every request on the bucket).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote_plus

from eucadb.cloud.local import s3_multipart as multipart
from eucadb.cloud.local import s3_objects as objects
from eucadb.cloud.local.s3_http import MAX_KEY, MAX_POLICY, OWNER, Request, Response, iso, read_document
from eucadb.cloud.local.s3_store import Store
from eucadb.cloud.local.s3_wire import NS, S3Error, error_xml, new_request_id, parse_xml, status_line, to_xml

log = logging.getLogger(__name__)
SUBRESOURCES = ("uploadId", "uploads", "delete", "policy", "location")
UNSUPPORTED = ("acl", "versioning", "versions", "versionId", "tagging", "cors", "lifecycle", "website", "logging",
               "notification", "replication", "encryption", "object-lock", "legal-hold", "retention", "torrent",
               "restore", "select", "accelerate", "analytics", "inventory", "metrics", "intelligent-tiering",
               "ownershipControls", "publicAccessBlock", "requestPayment", "attributes", "partNumber")


# bucket operations -----------------------------------------------------------------------------------
def list_buckets(store: Store, req: Request) -> Response:
    buckets = [("Bucket", [("Name", b.name), ("CreationDate", iso(b.created)), ("BucketRegion", b.region)])
               for b in store.list_buckets()]
    return Response.xml(to_xml("ListAllMyBucketsResult", [("Owner", OWNER), ("Buckets", buckets)]))


def create_bucket(store: Store, req: Request) -> Response:
    region = req.region
    document = read_document(req, MAX_POLICY)
    if document.strip():
        node = parse_xml(document, "CreateBucketConfiguration").find("LocationConstraint")
        region = node.text if node is not None and node.text else region
    if not store.create_bucket(req.bucket, region):
        if req.region == "us-east-1":  # S3's legacy answer in North Virginia: success, again
            return Response(200, [("Location", f"/{req.bucket}"), ("Content-Length", "0")])
        raise S3Error("BucketAlreadyOwnedByYou", BucketName=req.bucket)
    return Response(200, [("Location", f"/{req.bucket}"), ("Content-Length", "0")])


def head_bucket(store: Store, req: Request) -> Response:
    bucket = store.bucket(req.bucket)
    return Response(200, [("x-amz-bucket-region", bucket.region), ("Content-Length", "0")])


def delete_bucket(store: Store, req: Request) -> Response:
    store.delete_bucket(req.bucket)
    return Response(204)


def get_location(store: Store, req: Request) -> Response:
    region = store.bucket(req.bucket).region
    root = ET.Element("LocationConstraint", xmlns=NS)
    root.text = None if region == "us-east-1" else region  # S3 answers us-east-1 as empty
    return Response.xml(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def put_policy(store: Store, req: Request) -> Response:
    store.bucket(req.bucket)
    policy = read_document(req, MAX_POLICY)
    try:
        if not policy.lstrip().startswith(b"{"):
            raise ValueError
        json.loads(policy)
    except ValueError:
        raise S3Error("MalformedPolicy") from None
    store.put_policy(req.bucket, policy)
    return Response(204)


def get_policy(store: Store, req: Request) -> Response:
    policy = store.policy(req.bucket)
    return Response(200, [("Content-Type", "application/json"), ("Content-Length", str(len(policy)))], [policy])


def delete_policy(store: Store, req: Request) -> Response:
    store.delete_policy(req.bucket)
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


def list_objects(store: Store, req: Request) -> Response:
    """ListObjectsV2 (list-type=2) and the original ListObjects: one walk over the sorted keys."""
    store.bucket(req.bucket)
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
    for meta in store.keys_after(req.bucket, after, prefix):
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
    fields += [("Contents", [("Key", enc(m.key)), ("LastModified", iso(m.last_modified)), ("ETag", f'"{m.etag}"'),
                             *[("ChecksumAlgorithm", a) for a in m.checksums],
                             *([("ChecksumType", m.checksum_type)] if m.checksums else []),
                             ("Size", m.size),
                             *([("Owner", OWNER)] if not v2 or q.get("fetch-owner") == "true" else []),
                             ("StorageClass", m.headers.get("x-amz-storage-class", "STANDARD"))])
               for m in contents]
    fields += [("CommonPrefixes", [("Prefix", enc(p))]) for p in prefixes]
    return Response.xml(to_xml("ListBucketResult", fields))


def delete_objects(store: Store, req: Request) -> Response:
    store.bucket(req.bucket)
    root = parse_xml(read_document(req, 2 << 20, digest_required=True), "Delete")
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
        store.delete(req.bucket, key)
        if not quiet:
            results.append(("Deleted", [("Key", key)]))
    return Response.xml(to_xml("DeleteResult", results))


Handler = Callable[[Store, Request], Response]
ROUTES: dict[tuple[str, str, str | None], Handler] = {
    ("GET", "service", None): list_buckets,
    ("PUT", "bucket", None): create_bucket,
    ("HEAD", "bucket", None): head_bucket,
    ("DELETE", "bucket", None): delete_bucket,
    ("GET", "bucket", None): list_objects,
    ("GET", "bucket", "location"): get_location,
    ("GET", "bucket", "uploads"): multipart.list_uploads,
    ("POST", "bucket", "delete"): delete_objects,
    ("PUT", "bucket", "policy"): put_policy,
    ("GET", "bucket", "policy"): get_policy,
    ("DELETE", "bucket", "policy"): delete_policy,
    ("PUT", "object", None): objects.put_object,
    ("GET", "object", None): objects.get_object,
    ("HEAD", "object", None): objects.get_object,
    ("DELETE", "object", None): objects.delete_object,
    ("POST", "object", "uploads"): multipart.create_upload,
    ("PUT", "object", "uploadId"): multipart.upload_part,
    ("POST", "object", "uploadId"): multipart.complete_upload,
    ("DELETE", "object", "uploadId"): multipart.abort_upload,
    ("GET", "object", "uploadId"): multipart.list_parts,
}


class S3App:
    """WSGI entry point: route by (method, resource kind, subresource), answer S3's XML errors."""

    def __init__(self, root: Path, region: str):
        self.store = Store(root)
        self.region = region

    def bucket_policy(self, name: str) -> str | None:
        """The bucket's policy document (authorization evaluates it), None if it has none."""
        try:
            return self.store.policy(name).decode("utf-8", errors="replace")
        except S3Error:
            return None

    def route(self, req: Request) -> Handler:
        kind = "object" if req.key else "bucket" if req.bucket else "service"
        query = {q for q in req.query if not (q == "partNumber" and "uploadId" in req.query)}  # UploadPart's
        unsupported = next((q for q in UNSUPPORTED if q in query), None)
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
            response = self.route(req)(self.store, req)
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
