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
from collections.abc import Callable, Mapping
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


_SCALARS = frozenset({str, int, float, bool})


def to_wire(value: Any) -> Any:
    # Scalars are copied where they are met rather than through a call each: a stored job
    # is dumped at every change of it, and most of its members are scalars.
    kind = type(value)
    if kind in _SCALARS:
        return value
    # Before the dataclass test: a StrEnum is a str, and its plain value is what is stored.
    if isinstance(value, enum.Enum):
        return value.value
    fields = _wire_fields(kind)  # type: ignore[arg-type]  # classes are hashable
    if fields is not None:
        out: dict[str, Any] = {}
        for name, key in fields:
            item = getattr(value, name)
            if item is not None:
                out[key] = item if type(item) in _SCALARS else to_wire(item)
        return out
    if isinstance(value, Mapping):
        return {k: v if type(v) in _SCALARS else to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else to_wire(v) for v in value]
    return value


@functools.cache
def _wire_fields(cls: type) -> tuple[tuple[str, str], ...] | None:
    """(field, wire key) of a dataclass, computed once per class; None for other types."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple((f.name, camel(f.name)) for f in dataclasses.fields(cls))


Converter = Callable[[Any], Any]


def from_wire(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from a camelCase mapping; unknown keys are ignored."""
    kwargs: dict[str, Any] = {}
    for name, key, convert in _readers(cls):  # type: ignore[arg-type]  # classes hash
        if key in data:
            kwargs[name] = convert(data[key])
    return cls(**kwargs)


@functools.cache
def _readers(cls: type) -> tuple[tuple[str, str, Converter], ...]:
    """How to read each field of ``cls``, worked out once from its type hints."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, camel(f.name), _converter(hints[f.name])) for f in dataclasses.fields(cls)
    )


def _identity(value: Any) -> Any:
    return value


def _converter(hint: Any) -> Converter:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1:
            return _identity
        inner = _converter(non_none[0])
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _converter(args[0])
        return lambda v: None if v is None else tuple(item(x) for x in v)
    if origin is list:
        item = _converter(args[0])
        return lambda v: None if v is None else [item(x) for x in v]
    if origin in (dict, Mapping, typing.Mapping):
        value = _converter(args[1])
        if value is _identity:
            return lambda v: None if v is None else dict(v)
        return lambda v: None if v is None else {k: value(x) for k, x in v.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            nested: type = hint
            return lambda v: None if v is None else from_wire(nested, v)
        if issubclass(hint, enum.Enum):
            kind: type[enum.Enum] = hint
            return lambda v: None if v is None else kind(v)
        if hint is float:
            return lambda v: None if v is None else float(v)
    return _identity
