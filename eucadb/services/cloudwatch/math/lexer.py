"""Tokens of a metric math expression.

Ids start with a lower-case letter ([a-z][a-zA-Z0-9_]*, as query Ids); function names and keywords
(REPEAT, LINEAR, ASC, DESC, AND, OR, NOT) are upper case — "All functions must be written in
uppercase letters" (using-metric-math.html). Strings are single- or double-quoted with backslash
escapes; numbers are decimal with an optional exponent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from eucadb.services.cloudwatch.math.errors import ExpressionError


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    ID = "id"            # a query Id (lower-case start)
    NAME = "name"        # a function name or keyword (upper-case start)
    OP = "operator"
    END = "end of expression"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    position: int


# Longest operators first so that `<=` is not read as `<` then `=`.
OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "+", "-", "*", "/", "^", "<", ">", "!", "(", ")", "[", "]", ",")
WORD_OPERATORS = {"AND": "&&", "OR": "||", "NOT": "!"}
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LENGTH = 1024   # "The maximum search expression query size is 1024 characters" (search-expression-syntax)


def _string(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ExpressionError("Unterminated string", start)


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH * 4:
        raise ExpressionError(f"The expression is longer than {MAX_LENGTH * 4} characters")
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            value, end = _string(text, i)
            tokens.append(Token(Kind.STRING, value, i))
            i = end
            continue
        m = _NUMBER.match(text, i)
        if m:
            tokens.append(Token(Kind.NUMBER, m.group(), i))
            i = m.end()
            continue
        m = _WORD.match(text, i)
        if m:
            word = m.group()
            if word in WORD_OPERATORS:
                tokens.append(Token(Kind.OP, WORD_OPERATORS[word], i))
            else:
                tokens.append(Token(Kind.ID if word[0].islower() else Kind.NAME, word, i))
            i = m.end()
            continue
        op = next((o for o in OPERATORS if text.startswith(o, i)), None)
        if op is None:
            raise ExpressionError(f"Unexpected character {ch!r}", i)
        tokens.append(Token(Kind.OP, op, i))
        i += len(op)
    tokens.append(Token(Kind.END, "", len(text)))
    return tokens
