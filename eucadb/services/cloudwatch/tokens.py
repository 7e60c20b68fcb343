"""Opaque NextToken values: `kind:value`, base64url. Anything else is InvalidNextToken.

A token is client input like any other: its value may hold NUL (which would reach SQL) or digits that
are not ASCII ('²'.isdigit() is True, int('²') raises), so both are refused here, once."""
from __future__ import annotations

import base64
import binascii

from eucadb.services import bounds
from eucadb.services.cloudwatch.errors import bad_token


def encode(kind: str, value: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode(kind: str, token: str | None) -> str | None:
    if not token:
        return None
    try:
        text = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_token() from None
    prefix, sep, value = text.partition(":")
    if prefix != kind or not sep or bounds.has_nul(value):
        raise bad_token()
    return value


def number(text: str, below: int) -> int:
    """One ASCII-digit number of a token, 0 <= n < below."""
    value = bounds.ascii_int(text, 0, below - 1)
    if value is None:
        raise bad_token()
    return value


def decode_int(kind: str, token: str | None) -> int:
    value = decode(kind, token)
    return 0 if value is None else number(value, 2 ** 62)
