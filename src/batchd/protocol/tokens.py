"""Opaque pagination tokens: a versioned, typed cursor, refused when malformed.

A token only positions a cursor inside the request's own filter, so a forged but
well-formed one reveals nothing a caller could not list anyway.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from batchd import jsontext
from batchd.errors import InvalidParameter

__all__ = ["decode_token", "encode_token"]

_VERSION = 1


def encode_token(scope: str, cursor: list[Any]) -> str:
    raw = jsontext.dumps([_VERSION, scope, cursor])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(scope: str, token: str, types: tuple[type, ...]) -> list[Any]:
    """The cursor of a token made for ``scope``, each element of the given type."""
    try:
        padded = token + "=" * (-len(token) % 4)
        # validate=True: characters outside the alphabet make a token invalid, not ignored.
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        data = jsontext.loads(raw)
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as err:
        raise InvalidParameter(f"Invalid nextToken: {_short(token)}") from err
    if (
        not isinstance(data, list)
        or len(data) != 3
        or data[0] != _VERSION
        or data[1] != scope
        or not isinstance(data[2], list)
        or len(data[2]) != len(types)
        or not all(type(v) is t for v, t in zip(data[2], types, strict=True))
        or not all(-(2**63) <= v < 2**63 for v in data[2] if type(v) is int)  # SQL BIGINT
    ):
        raise InvalidParameter(f"Invalid nextToken: {_short(token)}")
    return data[2]


def _short(token: str) -> str:
    return token if len(token) <= 40 else token[:37] + "..."
