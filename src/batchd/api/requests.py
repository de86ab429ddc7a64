"""From an HTTP request to (operation, parameters), by the model's member locations."""

from __future__ import annotations

import json
from typing import Any

from botocore.model import OperationModel
from starlette.requests import Request

from batchd.errors import InvalidParameter

__all__ = ["TooLarge", "parse_params", "read_body"]


class TooLarge(InvalidParameter):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # RecursionError: too deep
        raise InvalidParameter(f"The request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise InvalidParameter("The request body must be a JSON object")
    return data
