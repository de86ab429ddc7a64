"""Output serialization by walking the operation's output shape.

Values come from operation results: mappings keyed by wire member names, or domain
dataclasses whose fields are the members' snake_case names. Members absent from the shape
are never emitted, and absent values are omitted, as AWS does.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from botocore.model import Shape

from batchd.domain.codec import snake

__all__ = ["serialize"]


def serialize(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None:
        return {}
    return _value(shape, value)


def _member(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    if dataclasses.is_dataclass(value):
        return getattr(value, snake(name), None)
    return None


def _value(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            item = _member(value, name)
            if item is not None:
                out[name] = _value(member, item)
        return out
    if kind == "list":
        return [_value(shape.member, item) for item in value]
    if kind == "map":
        return {str(k): _value(shape.value, v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if kind == "timestamp":  # stored as epoch ms; JSON protocols send epoch seconds
        return value / 1000
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    return value
