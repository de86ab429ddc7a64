"""A small bounded cache whose entries expire: what a replica may remember of shared state.

Entries live ``ttl`` seconds by the injected ``monotonic`` clock (tests advance a fake one
instead of sleeping), and at most ``capacity`` of them are kept, least recently used out
first: a client asking for endless names that do not exist must not grow memory.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

__all__ = ["MISS", "Miss", "TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Miss(enum.Enum):
    """What ``get`` returns for a key it does not hold: ``None`` is a value worth caching."""

    MISS = "miss"


MISS: Final = Miss.MISS


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, monotonic: Callable[[], float], capacity: int) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._capacity = capacity
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | Miss:
        entry = self._entries.get(key)
        if entry is None:
            return MISS
        if entry[0] <= self._monotonic():
            del self._entries[key]
            return MISS
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def update(self, key: K, change: Callable[[V], V]) -> None:
        """Change a held entry's value in place; it expires when it would have."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], change(entry[1]))

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
