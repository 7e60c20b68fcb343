"""Shape-driven conversion between wire values and plain Python values (botocore model shapes).

Decoding checks types as it goes, so handlers receive a dict with model member names, datetimes for
timestamps and numbers for numbers — a wrong type is InvalidParameterValue, never a crash.
"""
from __future__ import annotations

import math
import re
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from xml.etree import ElementTree as ET

from botocore.model import Shape

from eucadb.services import bounds
from eucadb.services.cloudwatch.errors import ApiError, invalid, limit, serialization

MAX_LIST_MEMBERS = 5000   # guards Query `X.member.N` against absurd indexes
INT_RANGES = {"integer": (-2 ** 31, 2 ** 31 - 1), "long": bounds.INT64}   # Smithy's integer and long


def _fail(path: str, shape: Shape) -> Exception:
    return invalid(f"Value for parameter {path or 'request'} is not a valid {shape.type_name}.")


def as_utc(value: datetime) -> datetime:
    """Aware UTC (SQLite gives back naive datetimes that were stored as UTC)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_timestamp(value: Any, path: str) -> datetime:
    """Epoch seconds (JSON, CBOR tag 1 already decoded) or ISO 8601 (Query) → aware UTC datetime."""
    try:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), timezone.utc)
        if isinstance(value, str):
            if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
                return datetime.fromtimestamp(float(value), timezone.utc)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    raise invalid(f"Value for parameter {path} is not a valid timestamp.")


def check_string(value: str, path: str) -> str:
    """Strings stored as text: valid Unicode (JSON "\\ud800" escapes decode to lone surrogates) and
    no NUL (PostgreSQL text and jsonb refuse it, which would fail the request half-way)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"Value for parameter {path} is not valid Unicode.") from None
    if bounds.has_nul(value):
        raise invalid(f"Value for parameter {path} must not contain NUL (U+0000) characters.")
    return value


def check_double(value: float, path: str) -> float:
    """Every protocol refuses what no double member can use (Query "inf", CBOR's Infinity and NaN)."""
    if not math.isfinite(value):
        raise invalid(f"Value for parameter {path} must be a finite number.")
    return value


# ---- JSON / CBOR documents -------------------------------------------------------------------------

def _doc_structure(shape: Shape, value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, shape)
    out = {}
    for name, member in shape.members.items():
        if name in value and value[name] is not None:
            out[name] = from_document(member, value[name], f"{path}.{name}" if path else name)
    return out


def _doc_list(shape: Shape, value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise _fail(path, shape)
    if len(value) > MAX_LIST_MEMBERS:
        raise limit(f"Too many members in {path}.")
    return [from_document(shape.member, v, f"{path}.member.{i + 1}") for i, v in enumerate(value)]


def _doc_map(shape: Shape, value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, shape)
    return {from_document(shape.key, k, path): from_document(shape.value, v, path) for k, v in value.items()}


def _doc_scalar(kind: str) -> Callable[[Shape, Any, str], Any]:
    def convert(shape: Shape, value: Any, path: str) -> Any:
        if kind == "string" and isinstance(value, str):
            return check_string(value, path)
        if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            low, high = INT_RANGES[shape.type_name]
            if not low <= value <= high:
                raise serialization(f"Value for parameter {path} does not fit in a {shape.type_name} "
                                    f"({low}..{high}).")
            return value
        if kind == "double" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return check_double(float(value), path)
        if kind == "boolean" and isinstance(value, bool):
            return value
        raise _fail(path, shape)
    return convert


DOCUMENT_DECODERS: dict[str, Callable[[Shape, Any, str], Any]] = {
    "structure": _doc_structure, "list": _doc_list, "map": _doc_map,
    "string": _doc_scalar("string"), "integer": _doc_scalar("integer"), "long": _doc_scalar("integer"),
    "double": _doc_scalar("double"), "float": _doc_scalar("double"), "boolean": _doc_scalar("boolean"),
    "timestamp": lambda shape, value, path: parse_timestamp(value, path),
}


def from_document(shape: Shape, value: Any, path: str = "") -> Any:
    decoder = DOCUMENT_DECODERS.get(shape.type_name)
    if decoder is None:
        raise _fail(path, shape)
    return decoder(shape, value, path)


# ---- the same conversion, compiled per shape, for well-formed documents ----------------------------
#
# `from_document` builds a path string for every member it visits so that a refusal can name it; on a
# 1000-datum PutMetricData that is most of the decoding time. `decode_document` first runs a decoder
# compiled once per shape that builds no paths and gives up (`_Refused`) at the first thing it does
# not accept; only then does the request go through `from_document`, which words the refusal. Both
# accept exactly the same values and return the same result, so the answer never depends on the path.

class _Refused(Exception):
    """Raised by a compiled decoder: let `from_document` find and word the problem."""


FastDecoder = Callable[[Any], Any]
_FAST: dict[str, FastDecoder] = {}
_COMPILING = threading.RLock()


def _fast(shape: Shape) -> FastDecoder:
    decoder = _FAST.get(shape.name)
    if decoder is None:
        with _COMPILING:
            decoder = _FAST.get(shape.name) or _compile(shape)
    return decoder


def _compile(shape: Shape) -> FastDecoder:
    """The decoder of a shape, registered before its members are compiled (shapes may nest)."""
    kind = shape.type_name
    if kind == "structure":
        members: list[tuple[str, FastDecoder]] = []

        def structure(value: Any) -> dict:
            if not isinstance(value, dict):
                raise _Refused
            out = {}
            for name, decode in members:
                v = value.get(name)
                if v is not None:
                    out[name] = decode(v)
            return out
        _FAST[shape.name] = structure
        members.extend((name, _fast(member)) for name, member in shape.members.items())
        return structure
    if kind == "list":
        def listing(value: Any) -> list:
            if not isinstance(value, list) or len(value) > MAX_LIST_MEMBERS:
                raise _Refused
            return [decode(v) for v in value]
        _FAST[shape.name] = listing
        decode = _fast(shape.member)
        return listing
    if kind == "map":
        def mapping(value: Any) -> dict:
            if not isinstance(value, dict):
                raise _Refused
            return {key(k): item(v) for k, v in value.items()}
        _FAST[shape.name] = mapping
        key, item = _fast(shape.key), _fast(shape.value)
        return mapping
    _FAST[shape.name] = _FAST_SCALARS.get(kind, _refuse)
    return _FAST[shape.name]


def _refuse(value: Any) -> Any:
    raise _Refused


def _fast_string(value: Any) -> str:
    if isinstance(value, str) and (value.isascii() or _utf8(value)) and not bounds.has_nul(value):
        return value
    raise _Refused


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fast_integer(kind: str) -> FastDecoder:
    low, high = INT_RANGES[kind]

    def integer(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise _Refused
    return integer


def _fast_double(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    raise _Refused


def _fast_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Refused


def _fast_timestamp(value: Any) -> datetime:
    try:
        return parse_timestamp(value, "")
    except ApiError:
        raise _Refused from None


_FAST_SCALARS: dict[str, FastDecoder] = {
    "string": _fast_string, "integer": _fast_integer("integer"), "long": _fast_integer("long"),
    "double": _fast_double, "float": _fast_double, "boolean": _fast_boolean, "timestamp": _fast_timestamp,
}


def decode_document(shape: Shape, value: Any) -> Any:
    """`from_document(shape, value)`, with the path-free compiled decoder tried first."""
    try:
        return _fast(shape)(value)
    except _Refused:
        return from_document(shape, value)


def to_document(value: Any, epoch: bool = True) -> Any:
    """Handler output → JSON-able (datetimes as epoch seconds) or CBOR-able (datetimes kept)."""
    if isinstance(value, dict):
        return {k: to_document(v, epoch) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_document(v, epoch) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).timestamp() if epoch else as_utc(value)
    return value


# ---- AWS Query (flat form parameters) ---------------------------------------------------------------

LEAF = ""   # a node's own value sits under the empty key ("a.b" and "a.b.c" can both be sent)


def query_tree(params: Mapping[str, str]) -> dict:
    """Flat `A.member.1.B` keys → nested dicts, built once so decoding is linear in the request."""
    root: dict = {}
    for key, value in params.items():
        node = root
        for part in key.split("."):
            node = node.setdefault(part, {}) if part else node
            if not isinstance(node, dict):
                break
        else:
            node[LEAF] = value
    return root


def _indexed(node: dict, path: str) -> list[tuple[int, dict]]:
    items = []
    for index, child in node.items():
        if index == LEAF:
            continue
        number = bounds.ascii_int(index, 0, bounds.INT64[1])
        if number is None:
            raise invalid(f"Member index {index[:20]!r} of {path} is not a number (ASCII digits 1 to "
                          f"{MAX_LIST_MEMBERS}).")
        if not 0 < number <= MAX_LIST_MEMBERS:
            raise limit(f"Member index {index[:20]!r} of {path} is not between 1 and {MAX_LIST_MEMBERS}.")
        items.append((number, child))
    return sorted(items, key=lambda item: item[0])


def from_query(shape: Shape, node: dict, path: str = "") -> Any:
    """Decode a `query_tree` node against a model shape."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in node:
                out[name] = from_query(member, node[wire], f"{path}.{wire}" if path else wire)
        return out
    if kind == "list":
        return [from_query(shape.member, child, f"{path}.member.{i}")
                for i, child in _indexed(node.get("member", {}), path)]
    if kind == "map":
        out = {}
        for i, child in _indexed(node.get("entry", {}), path):
            if "key" not in child or "value" not in child:
                raise _fail(f"{path}.entry.{i}", shape)
            out[from_query(shape.key, child["key"], path)] = from_query(shape.value, child["value"], path)
        return out
    if LEAF not in node:
        raise _fail(path, shape)
    return _query_scalar(shape, node[LEAF], path)


def _query_scalar(shape: Shape, raw: str, path: str) -> Any:
    kind = shape.type_name
    try:
        if kind == "string":
            return check_string(raw, path)
        if kind in INT_RANGES:
            number = bounds.ascii_int(raw, *INT_RANGES[kind], signed=True)
            if number is None:
                raise ValueError(raw)
            return number
        if kind in ("double", "float"):
            if not bounds.ASCII_FLOAT.fullmatch(raw):
                raise ValueError(raw)
            return check_double(float(raw), path)
        if kind == "boolean" and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if kind == "timestamp":
            return parse_timestamp(raw, path)
    except ValueError:
        pass
    raise _fail(path, shape)


# ---- XML (Query responses) --------------------------------------------------------------------------

XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """XML 1.0 cannot carry control characters or lone surrogates; echoed input may hold them."""
    return XML_INVALID.sub("\ufffd", text)


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, float):
        return repr(value)
    return xml_safe(str(value))


def to_xml(parent: ET.Element, shape: Shape, value: Any, tag: str) -> None:
    node = ET.SubElement(parent, tag)
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            if value.get(name) is not None:
                to_xml(node, member, value[name], member.serialization.get("name", name))
    elif kind == "list":
        for item in value:
            to_xml(node, shape.member, item, shape.member.serialization.get("name", "member"))
    elif kind == "map":
        for key, item in value.items():
            entry = ET.SubElement(node, "entry")
            to_xml(entry, shape.key, key, "key")
            to_xml(entry, shape.value, item, "value")
    else:
        node.text = _xml_text(value)
