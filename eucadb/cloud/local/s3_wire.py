"""S3's wire format for the embedded S3 (s3.py): errors, XML, request bodies, digests.

Why its own module: a real S3 client (boto3, barman-cloud) checks far more than the data — error
codes and statuses, ETag shapes, checksum headers, the aws-chunked framing recent SDKs wrap bodies
in — and all of that is independent of how objects are stored.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
BLOCK = 1 << 20  # read/write granularity: bounded memory whatever the object size
MAX_XML = 2 << 20  # a DeleteObjects of 1000 long keys fits; nothing legitimate is bigger

ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded and you already "
                                     "own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found.  The part may not have been "
                         "uploaded, or the specified entity tag may not match the part's entity tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. Parts must be ordered by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedPolicy": (400, "Policies must be valid JSON and the first byte must be '{'"),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our published schema"),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size"),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified upload does not exist. The upload ID may be invalid, or the upload may "
                          "have been aborted or completed."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
}
REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           411: "Length Required", 412: "Precondition Failed", 416: "Requested Range Not Satisfiable",
           500: "Internal Server Error", 501: "Not Implemented"}


class S3Error(Exception):
    """An AWS S3 error answered to the caller; `extra` adds fields such as BucketName or Key."""

    def __init__(self, code: str, message: str | None = None, **extra: str):
        self.status, default = ERRORS[code]
        super().__init__(message or default)
        self.code, self.extra = code, extra


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"


def new_request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def error_xml(exc: S3Error, resource: str, request_id: str) -> bytes:
    root = ET.Element("Error")
    for name, value in (("Code", exc.code), ("Message", str(exc)), *exc.extra.items(),
                        ("Resource", resource), ("RequestId", request_id)):
        ET.SubElement(root, name).text = value
    return ET.tostring(root, xml_declaration=True, encoding="UTF-8")


# XML documents -------------------------------------------------------------------------------------
def to_xml(root_name: str, children: list[tuple[str, object]]) -> bytes:
    """A response document from (name, value) pairs; a value may be a nested list of pairs, None
    values are left out (AWS omits absent fields rather than sending them empty)."""
    root = ET.Element(root_name, xmlns=NS)
    _fill(root, children)
    return ET.tostring(root, xml_declaration=True, encoding="UTF-8")


def _fill(parent: ET.Element, children: list[tuple[str, object]]) -> None:
    for name, value in children:
        if value is None:
            continue
        element = ET.SubElement(parent, name)
        if isinstance(value, list):
            _fill(element, value)
        elif isinstance(value, bool):
            element.text = "true" if value else "false"
        else:
            element.text = str(value)


def parse_xml(data: bytes, root_name: str) -> ET.Element:
    """A request document, namespace stripped; anything else is MalformedXML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise S3Error("MalformedXML") from None
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    if root.tag != root_name:
        raise S3Error("MalformedXML")
    return root


# digests and checksums -----------------------------------------------------------------------------
class _Crc32:
    """hashlib-style CRC32: S3's (and botocore's) default flexible checksum."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


CHECKSUMS: dict[str, Callable[[], object]] = {"CRC32": _Crc32, "SHA1": hashlib.sha1, "SHA256": hashlib.sha256}
UNSUPPORTED_CHECKSUMS = ("CRC32C", "CRC64NVME")


def checksum_algorithm(name: str) -> str:
    """An x-amz-checksum-algorithm value, upper-cased, refused with a clear message if unsupported."""
    upper = name.upper()
    if upper in CHECKSUMS:
        return upper
    if upper in UNSUPPORTED_CHECKSUMS:
        raise S3Error("NotImplemented", f"checksum algorithm {upper} is not supported by the embedded S3: "
                                        f"use {', '.join(CHECKSUMS)}")
    raise S3Error("InvalidRequest", f"Checksum algorithm {name!r} is not valid: use {', '.join(CHECKSUMS)}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def composite(algorithm: str, digests: list[bytes]) -> bytes:
    """S3's digest of a multipart object: the algorithm over the concatenated part digests."""
    h = CHECKSUMS[algorithm]() if algorithm != "MD5" else hashlib.md5()
    h.update(b"".join(digests))
    return h.digest()  # type: ignore[attr-defined]


@dataclass
class Expected:
    """What the client says the body is: Content-MD5, a hex x-amz-content-sha256, flexible checksums.
    Header checksums are known up front; trailer ones (aws-chunked) arrive after the data."""
    md5: bytes | None = None
    sha256: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64 value
    trailer: str | None = None  # algorithm announced in x-amz-trailer


_HEX64 = re.compile(r"[0-9a-f]{64}")
_PAYLOAD_MARKERS = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")


def expected_from(headers: dict[str, str]) -> Expected:
    """Read (and validate the form of) every digest header of a request."""
    exp = Expected()
    if "content-md5" in headers:
        try:
            exp.md5 = base64.b64decode(headers["content-md5"], validate=True)
        except binascii.Error:
            raise S3Error("InvalidDigest") from None
        if len(exp.md5) != 16:
            raise S3Error("InvalidDigest")
    sha = headers.get("x-amz-content-sha256", "")
    if _HEX64.fullmatch(sha.lower()):
        exp.sha256 = sha.lower()
    elif sha and sha not in _PAYLOAD_MARKERS:
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… value "
                                         "or the hex SHA-256 of the payload", ArgumentName="x-amz-content-sha256")
    for name, value in headers.items():
        if name.startswith("x-amz-checksum-") and name not in ("x-amz-checksum-algorithm", "x-amz-checksum-mode",
                                                               "x-amz-checksum-type"):
            exp.checksums[checksum_algorithm(name[len("x-amz-checksum-"):])] = value
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    if trailer:
        if not trailer.startswith("x-amz-checksum-"):
            raise S3Error("InvalidRequest", f"x-amz-trailer {trailer!r} is not a supported trailer: "
                                            "only x-amz-checksum-* may be sent after the body")
        exp.trailer = checksum_algorithm(trailer[len("x-amz-checksum-"):])
    return exp


class Digests:
    """Everything S3 computes over a body as it streams past: MD5 (the ETag), SHA-256 when the
    client signed the payload, and the flexible checksums asked for."""

    def __init__(self, sha256: bool, algorithms: set[str]):
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256() if sha256 else None
        self.checksums = {name: CHECKSUMS[name]() for name in algorithms}
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        for h in self.checksums.values():
            h.update(data)  # type: ignore[attr-defined]

    def checksum(self, algorithm: str) -> bytes:
        return self.checksums[algorithm].digest()  # type: ignore[attr-defined]

    def verify(self, exp: Expected) -> None:
        """Raise the error S3 answers for the first digest that does not match."""
        if exp.md5 is not None and exp.md5 != self.md5.digest():
            raise S3Error("BadDigest")
        if exp.sha256 is not None and self.sha256 is not None and exp.sha256 != self.sha256.hexdigest():
            raise S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=exp.sha256,
                          S3ComputedContentSHA256=self.sha256.hexdigest())
        for algorithm, value in exp.checksums.items():
            if value != b64(self.checksum(algorithm)):
                raise S3Error("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


# request bodies ------------------------------------------------------------------------------------
class RawBody:
    """The bytes on the wire: exactly Content-Length of them, or up to EOF when the server has
    already removed HTTP chunking (wsgi.input_terminated). A short body is IncompleteBody."""

    def __init__(self, stream, length: int | None):
        self.stream, self.remaining, self.buffer = stream, length, b""

    def _fill(self, want: int) -> bool:
        if self.remaining == 0:
            return False
        n = want if self.remaining is None else min(want, self.remaining)
        data = self.stream.read(n)
        if not data:
            if self.remaining is not None:
                raise S3Error("IncompleteBody")
            self.remaining = 0
            return False
        if self.remaining is not None:
            self.remaining -= len(data)
        self.buffer += data
        return True

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, b"" at the end."""
        if not self.buffer:
            self._fill(size)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def readline(self, limit: int = 8192) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > limit:
                raise S3Error("InvalidRequest", "aws-chunked body: a chunk header line is too long")
            if not self._fill(4096):
                break
        line, sep, rest = self.buffer.partition(b"\n")
        self.buffer = rest
        return line + sep

    def exact(self, size: int) -> Iterator[bytes]:
        """Exactly `size` bytes in pieces; fewer is IncompleteBody."""
        while size > 0:
            data = self.read(min(size, BLOCK))
            if not data:
                raise S3Error("IncompleteBody")
            size -= len(data)
            yield data


class RequestBody:
    """A request's payload as decoded blocks. With Content-Encoding aws-chunked (SigV4 streaming,
    optionally with a checksum trailer) the framing is removed and the trailers collected; chunk
    signatures are not checked (authentication comes with a later change)."""

    def __init__(self, environ: dict, headers: dict[str, str]):
        length = environ.get("CONTENT_LENGTH") or ""
        if environ.get("wsgi.input_terminated"):
            self.raw = RawBody(environ["wsgi.input"], None)
        elif length.isdigit():
            self.raw = RawBody(environ["wsgi.input"], int(length))
        else:
            self.raw = None
        encodings = [e.strip() for e in headers.get("content-encoding", "").split(",") if e.strip()]
        self.chunked = "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith("STREAMING-")
        self.stored_encoding = ",".join(e for e in encodings if e != "aws-chunked") or None
        decoded = headers.get("x-amz-decoded-content-length")
        self.decoded_length = int(decoded) if decoded and decoded.isdigit() else None
        self.trailers: dict[str, str] = {}

    @property
    def declared_length(self) -> int | None:
        """The payload size as announced, to refuse too-big objects before reading them."""
        if self.chunked:
            return self.decoded_length
        return self.raw.remaining if self.raw else None

    def require_length(self) -> None:
        if self.raw is None:
            raise S3Error("MissingContentLength")

    def __iter__(self) -> Iterator[bytes]:
        self.require_length()
        assert self.raw is not None
        if not self.chunked:
            if self.raw.remaining is not None:
                yield from self.raw.exact(self.raw.remaining)
            else:
                yield from iter(lambda: self.raw.read(BLOCK), b"")  # type: ignore[union-attr]
            return
        total = 0
        while True:
            line = self.raw.readline()
            size_field = line.split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise S3Error("IncompleteBody", "aws-chunked body: expected a chunk size line") from None
            if size == 0:
                break
            total += size
            yield from self.raw.exact(size)
            if self.raw.readline() not in (b"\r\n", b"\n"):
                raise S3Error("IncompleteBody", "aws-chunked body: a chunk does not end with CRLF")
        self._read_trailers()
        if self.decoded_length is not None and total != self.decoded_length:
            raise S3Error("IncompleteBody", "the aws-chunked body does not hold x-amz-decoded-content-length bytes")

    def _read_trailers(self) -> None:
        while True:
            line = self.raw.readline().strip()  # type: ignore[union-attr]
            if not line:
                return
            name, _, value = line.decode("latin-1").partition(":")
            self.trailers[name.strip().lower()] = value.strip()

    def read_small(self, limit: int = MAX_XML) -> bytes:
        """A small document body (XML, policy JSON); a bigger one is refused, not buffered."""
        data = bytearray()
        for block in self:
            data += block
            if len(data) > limit:
                raise S3Error("MaxMessageLengthExceeded", f"Your request was too big: at most {limit} bytes")
        return bytes(data)


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a `Range: bytes=…` header; None = serve the whole object (S3 ignores
    multiple or malformed ranges); an unsatisfiable one is InvalidRange."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        n = int(last)
        if n == 0:
            raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=value)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        if last and int(last) < start:
            return None
        raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=value)
    return start, end
