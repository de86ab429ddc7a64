"""The one JSON entry point of batchd: orjson, with the standard library where orjson refuses.

With ``json``, encoding and decoding took about a fifth of a submit's CPU on the main thread
(py-spy); orjson cut the server's CPU per submit by 5-14%. It refuses two things ``json``
accepts, and clients send both today:

- lone UTF-16 surrogates (``"\\ud800"``) when decoding: boto3 escapes a Python string holding
  one that way, and the request must reach validation, which names the field that holds it;
- integers beyond 64 bits, and those lone surrogates, when encoding: a request decoded by the
  fallback keeps them, and so does the text of a ``serviceRequestPayload`` echoed back.

Both fall back to ``json`` rather than fail. (orjson decodes an integer beyond 64 bits as a
float, as JavaScript does; only a document decoded by the fallback keeps it exact.)
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_pretty", "dumps_text", "loads"]

_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
_COMPACT_SORTED = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """``value`` as compact UTF-8 JSON; with ``sort_keys``, the same text for equal values."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError:
        return (_COMPACT_SORTED if sort_keys else _COMPACT)(value).encode()


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _COMPACT(value)


def dumps_pretty(value: Any) -> str:
    """``value`` as JSON text indented by two spaces, for files people read."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, indent=2)


def loads(text: str | bytes) -> Any:
    """The value of ``text``; raises ``ValueError`` (``json.JSONDecodeError``) when invalid."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Only json's verdict counts: it accepts lone surrogates, and its message is the one
        # clients see for invalid input.
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
