"""Output serialization by the operation's output shape.

Values come from operation results: mappings keyed by wire member names, or domain
dataclasses whose fields are the members' snake_case names. Members absent from the shape
are never emitted, and absent values are omitted, as AWS does.

Each shape is turned once into a function that serializes its values; walking the botocore
shape tree on every response cost more than the rest of a Describe.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import Shape

from batchd import jsontext
from batchd.domain.codec import snake

__all__ = ["serialize", "to_json"]

Serializer = Callable[[Any], Any]

# Keyed by id(shape); the shape is kept alongside so that its id is never reused.
_COMPILED: dict[int, tuple[Shape, Serializer]] = {}


def serialize(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None:
        return {}
    return serializer(shape)(value)


def to_json(shape: Shape | None, value: Any) -> bytes:
    """The response body: ``value`` serialized by ``shape``, as compact JSON."""
    return jsontext.dumps(serialize(shape, value))


def serializer(shape: Shape) -> Serializer:
    found = _COMPILED.get(id(shape))
    if found is None:
        # Registered before its members are compiled, so a recursive shape finds itself.
        cell: list[Serializer] = []

        def recursive(value: Any) -> Any:
            return cell[0](value)

        _COMPILED[id(shape)] = (shape, recursive)
        compiled = _compile(shape)
        cell.append(compiled)
        _COMPILED[id(shape)] = (shape, compiled)
        return compiled
    return found[1]


def _compile(shape: Shape) -> Serializer:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape)
    if kind == "list":
        item = serializer(shape.member)
        return lambda value: [item(v) for v in value]
    if kind == "map":
        entry = serializer(shape.value)
        return lambda value: {str(k): entry(v) for k, v in value.items()}
    if kind == "timestamp":  # stored as epoch ms; JSON protocols send epoch seconds
        return lambda value: value / 1000
    if kind in ("double", "float"):
        return float
    if kind in ("integer", "long"):
        return int
    return _scalar


def _scalar(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _structure(shape: Shape) -> Serializer:
    members = [(name, snake(name), serializer(member)) for name, member in shape.members.items()]

    def from_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = value.get
        for name, _, serialize_member in members:
            item = get(name)
            if item is not None:
                out[name] = serialize_member(item)
        return out

    def from_object(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, attribute, serialize_member in members:
            item = getattr(value, attribute, None)
            if item is not None:
                out[name] = serialize_member(item)
        return out

    def structure(value: Any) -> dict[str, Any]:
        if type(value) is dict or isinstance(value, Mapping):
            return from_mapping(value)
        if dataclasses.is_dataclass(value):
            return from_object(value)
        return {}

    return structure
