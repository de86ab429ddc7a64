"""From an HTTP request to (operation, parameters), by the model's member locations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from botocore.model import OperationModel

from batchd import jsontext
from batchd.errors import InvalidParameter

__all__ = ["ClientDisconnected", "Receive", "TooLarge", "parse_params", "read_body"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class TooLarge(InvalidParameter):
    pass


class ClientDisconnected(Exception):
    """The client went away before sending the whole body; there is no one to answer."""


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The request body from ASGI ``http.request`` messages, refused beyond ``limit`` bytes.

    ``declared`` is the raw Content-Length header, checked before anything is read.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"Request body of {declared.decode('latin-1')} bytes exceeds the limit of {limit} bytes"
        )
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the usual case: one message holds it all
        if len(body) > limit:
            raise TooLarge(f"Request body exceeds the limit of {limit} bytes")
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnected()
        message = await receive()


def parse_params(
    op: OperationModel, labels: dict[str, str], query: list[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    shape = op.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    has_body_members = False
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            if wire_name in labels:
                params[name] = labels[wire_name]
        elif location == "querystring":
            values = [v for k, v in query if k == wire_name]
            if values:
                params[name] = values if member.type_name == "list" else values[0]
        elif location is None:
            has_body_members = True
    if has_body_members and body.strip():
        params.update(_json_object(body))
    return params


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = jsontext.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # RecursionError: too deep
        raise InvalidParameter(f"The request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise InvalidParameter("The request body must be a JSON object")
    return data
