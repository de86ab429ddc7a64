"""Input validation by walking the operation's input shape.

Checks what the model declares (required members, types, enums, lengths, sizes, ranges)
and the documented rules of ``rules.RULES``. Messages follow AWS's validation wording and
name the member by its path, so a caller sees exactly which field to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from botocore.model import Shape

from batchd.errors import InvalidParameter
from batchd.protocol.rules import RULES, Rule

__all__ = ["validate"]

_MAX_REPORTED = 5


def validate(operation: str, shape: Shape, params: Mapping[str, Any]) -> None:
    errors: list[str] = []
    _structure(operation, shape, params, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(errors[:_MAX_REPORTED])
        raise InvalidParameter(f"{count} validation {noun} detected: {shown}")


def _rule(operation: str, path: str) -> Rule | None:
    return RULES.get(f"{operation}.{path}") or RULES.get(f"*.{path}")


def _fail(path: str, value: Any, constraint: str) -> str:
    shown = "null" if value is None else repr(value) if not isinstance(value, dict | list) else ""
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    value_part = f"Value {shown} at" if shown else "Value at"
    return f"{value_part} '{path}' failed to satisfy constraint: {constraint}"


def _structure(op: str, shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        errors.append(_fail(path or "body", value, "Member must be a structure (JSON object)"))
        return
    for name in shape.required_members:
        if value.get(name) is None:
            errors.append(_fail(_join(path, name), None, "Member must not be null"))
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _value(op, member, item, _join(path, name), errors)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _value(op: str, shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    checker = _CHECKERS.get(kind)
    if checker is not None and not checker(value):
        errors.append(_fail(path, value, f"Member must be of type {_TYPE_NAMES.get(kind, kind)}"))
        return
    if kind == "structure":
        _structure(op, shape, value, path, errors)
    elif kind == "list":
        _sized(shape, value, path, errors)
        for item in value:
            _value(op, shape.member, item, f"{path}[]", errors)
        _apply_rule(op, path, value, errors)
        return
    elif kind == "map":
        _sized(shape, value, path, errors)
        for key, item in value.items():
            _value(op, shape.key, key, f"{path}.key", errors)
            _value(op, shape.value, item, f"{path}{{}}", errors)
    elif kind == "string":
        _string(op, shape, value, path, errors)
    elif kind in ("integer", "long", "double", "float"):
        _number(shape, value, path, errors)
    _apply_rule(op, path, value, errors)


def _sized(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        errors.append(_fail(path, value, f"Member must have length greater than or equal to {low}"))
    if high is not None and len(value) > high:
        errors.append(_fail(path, value, f"Member must have length less than or equal to {high}"))


def _string(op: str, shape: Shape, value: str, path: str, errors: list[str]) -> None:
    rule = _rule(op, path)
    folded = value.upper() if rule is not None and rule.enum_ignores_case else value
    if shape.enum and folded not in shape.enum:
        allowed = ", ".join(shape.enum)
        errors.append(_fail(path, value, f"Member must satisfy enum value set: [{allowed}]"))
    if not _storable(value):
        errors.append(_fail(path, value, "Member must be Unicode text without NUL characters"))
    _sized(shape, value, path, errors)


def _storable(value: str) -> bool:
    """Neither NUL nor a lone surrogate (from a JSON escape): databases cannot store them."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(shape: Shape, value: float, path: str, errors: list[str]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(_fail(path, value, "Member must be a finite number"))
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        errors.append(_fail(path, value, f"Member must have value greater than or equal to {low}"))
    if high is not None and value > high:
        errors.append(_fail(path, value, f"Member must have value less than or equal to {high}"))


def _apply_rule(op: str, path: str, value: Any, errors: list[str]) -> None:
    rule = _rule(op, path)
    if rule is None:
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        if rule.minimum is not None and value < rule.minimum:
            errors.append(
                _fail(
                    path, value, f"Member must have value greater than or equal to {rule.minimum:g}"
                )
            )
        if rule.maximum is not None and value > rule.maximum:
            errors.append(
                _fail(path, value, f"Member must have value less than or equal to {rule.maximum:g}")
            )
    if isinstance(value, list | dict):
        if rule.min_items is not None and len(value) < rule.min_items:
            errors.append(_fail(path, value, f"Member must have at least {rule.min_items} item(s)"))
        if rule.max_items is not None and len(value) > rule.max_items:
            errors.append(_fail(path, value, f"Member must have at most {rule.max_items} item(s)"))
    if isinstance(value, str):
        if rule.pattern is not None and not rule.pattern.match(value):
            errors.append(_fail(path, value, f"Member must be {rule.hint}"))
        if rule.max_bytes is not None and len(value.encode("utf-8")) > rule.max_bytes:
            errors.append(_fail(path, "", f"Member must be at most {rule.max_bytes} bytes long"))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_CHECKERS = {
    "structure": lambda v: isinstance(v, Mapping),
    "list": lambda v: isinstance(v, list),
    "map": lambda v: isinstance(v, Mapping),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: _is_int(v) and -(2**31) <= v < 2**31,
    "long": _is_int,
    "double": _is_number,
    "float": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "timestamp": _is_number,
}
_TYPE_NAMES = {"structure": "object", "map": "object", "list": "list", "long": "integer"}
