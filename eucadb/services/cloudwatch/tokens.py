"""Opaque NextToken values: `kind:value`, base64url. Anything else is InvalidNextToken."""
from __future__ import annotations

import base64
import binascii

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
    if prefix != kind or not sep:
        raise bad_token()
    return value


def decode_int(kind: str, token: str | None) -> int:
    value = decode(kind, token)
    if value is None:
        return 0
    if not value.isdigit() or int(value) >= 2 ** 62:
        raise bad_token()
    return int(value)
