"""Operation name -> handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from batchd.operations.context import Context

__all__ = ["HANDLERS", "Handler", "operation"]

Params = dict[str, Any]
Handler = Callable[[Context, Params], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register
