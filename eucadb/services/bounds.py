"""Bounds on what a client sends, applied before any of it is interpreted (CloudWatch and Reporting).

Python's own parsers accept more than any client needs, and what they accept breaks later: `json` nests
until the interpreter's recursion limit (RecursionError), reads `1e400` as inf and `10**400` as an exact
int that no column or double holds; `str.isdigit()` is True for '²', which `int()` then refuses;
PostgreSQL refuses NUL in text. Every service parses numbers, indexes and bodies through these helpers,
so each of those is one clear `Malformed` error (a 400) instead of a crash.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

INT64 = (-2 ** 63, 2 ** 63 - 1)
ASCII_INT = re.compile(r"[+-]?[0-9]+")      # `\d` and isdigit() also match '²', '٣', …
ASCII_DIGITS = re.compile(r"[0-9]+")
ASCII_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")   # float() also takes '١.٥'
MAX_DIGITS = 20                             # enough for any int64; int() of more is wasted work
JSON_LEAVES: tuple[type, ...] = (str, int, float, bool)   # what json.loads gives besides dict, list, None


class Malformed(ValueError):
    """Input no well-behaved client sends; the message says what was wrong and what is allowed."""


def ascii_int(text: str, low: int, high: int, signed: bool = False) -> int | None:
    """`text` as an int when it is only ASCII digits (optionally signed) within [low, high]; else None."""
    pattern = ASCII_INT if signed else ASCII_DIGITS
    if len(text) > MAX_DIGITS + 1 or not pattern.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def _constant(text: str) -> float:
    raise Malformed(f"{text} is not a JSON value (JSON has no NaN or Infinity)")


def check_tree(doc: Any, max_depth: int, leaves: tuple[type, ...] = JSON_LEAVES, finite: bool = False) -> None:
    """Containers nested at most `max_depth` deep, only `leaves` in them, integers within 64 bits and,
    when `finite`, no infinite or NaN double (in parsed JSON those can only come from an overflow).

    Level by level, without recursion, so a document that took the parser to its limit cannot take this
    walk past it; exact type() lookups keep it to a fraction of the parse (it sees every value)."""
    allowed = frozenset((*leaves, type(None)))
    level, depth = [doc], 0
    while level:
        depth += 1
        deeper = []
        for node in level:
            kind = type(node)
            if kind is dict or kind is list:
                if depth > max_depth:
                    raise Malformed(f"the document is nested deeper than {max_depth} levels")
                deeper.extend(node.values() if kind is dict else node)
            elif kind is int:
                if not INT64[0] <= node <= INT64[1]:
                    raise Malformed("an integer is out of range (integers must fit in 64 bits)")
            elif kind is float:
                if finite and not math.isfinite(node):
                    raise Malformed("a number is out of range (doubles reach about ±1.8e308)")
            elif kind not in allowed:
                raise Malformed(f"a value of type {kind.__name__} has no meaning here")
        level = deeper


def load_json(data: bytes | str, max_depth: int) -> Any:
    """`json.loads` within bounds: depth, finite doubles, 64-bit integers, valid UTF-8, and no
    NaN/Infinity literals (Python's json accepts them; JSON and Smithy's malformed-request tests do not)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise Malformed(f"the document is nested deeper than {max_depth} levels") from None
    except Malformed:
        raise
    except ValueError as exc:          # JSONDecodeError, UnicodeDecodeError, int() of > 4300 digits
        raise Malformed(str(exc)) from None
    check_tree(doc, max_depth, finite=True)
    return doc


def has_nul(text: str) -> bool:
    """PostgreSQL text and jsonb cannot hold U+0000: a string with it must be refused, not stored."""
    return "\x00" in text
