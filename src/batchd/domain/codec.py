"""Generic conversion between domain dataclasses and wire-style plain data.

Keys on the wire (and in stored documents) are the camelCase member names of the AWS
model; dataclass fields are their snake_case forms. Map keys (tags) are user data and are
never renamed. ``None`` members are omitted, as AWS omits absent members.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["camel", "from_wire", "snake", "to_wire"]


@functools.cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def to_wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[camel(field.name)] = to_wire(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_wire(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from a camelCase mapping; unknown keys are ignored."""
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = camel(field.name)
        if key in data:
            kwargs[field.name] = _convert(hints[field.name], data[key])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return _convert(non_none[0], value) if len(non_none) == 1 else value
    if origin is tuple:
        return tuple(_convert(args[0], v) for v in value)
    if origin is list:
        return [_convert(args[0], v) for v in value]
    if origin in (dict, Mapping, typing.Mapping):
        return {k: _convert(args[1], v) for k, v in value.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return from_wire(hint, value)
        if issubclass(hint, enum.Enum):
            return hint(value)
        if hint is float:
            return float(value)
    return value
