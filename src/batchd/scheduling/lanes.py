"""An ordered collection with O(log n) updates and a front that costs only what is read.

A binary heap with lazy deletion: removing or re-keying an item leaves a stale entry behind that
readers skip, and the heap is rebuilt once stale entries outnumber live ones, so every update is
O(log n) amortised. Reading in order does not pop: a second small heap walks the big one from the
root, so the first k items cost O(k log k) whatever the size, and reading never mutates.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Key", "OrderedLane"]

T = TypeVar("T")
Key = tuple[int, int, int]

_Entry = tuple[Key, int, str]
_COMPACT_SLACK = 64


class OrderedLane(Generic[T]):
    """Items keyed by id, kept in ascending ``Key`` order.

    Iterating while the lane is being changed is undefined; the planner reads a lane only between
    the runtime's mutations.
    """

    __slots__ = ("_gen", "_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, tuple[int, Key, T]] = {}
        self._gen = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __bool__(self) -> bool:
        return bool(self._live)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._live

    def put(self, item_id: str, key: Key, item: T) -> None:
        """Insert, or update in place; only a key change costs a heap push."""
        current = self._live.get(item_id)
        if current is not None and current[1] == key:
            self._live[item_id] = (current[0], key, item)
            return
        gen = next(self._gen)
        self._live[item_id] = (gen, key, item)
        heapq.heappush(self._heap, (key, gen, item_id))
        self._drop_stale_top()
        self._maybe_compact()

    def discard(self, item_id: str) -> None:
        if self._live.pop(item_id, None) is None:
            return
        self._drop_stale_top()
        self._maybe_compact()

    def first(self) -> T | None:
        # The top is kept live by every mutation, so this is O(1).
        if not self._heap:
            return None
        return self._live[self._heap[0][2]][2]

    def __iter__(self) -> Iterator[T]:
        heap = self._heap
        live = self._live
        if not heap:
            return
        # Entries are unique (the generation is), so the index never takes part in comparisons.
        frontier: list[tuple[_Entry, int]] = [(heap[0], 0)]
        size = len(heap)
        while frontier:
            entry, i = heapq.heappop(frontier)
            current = live.get(entry[2])
            if current is not None and current[0] == entry[1]:
                yield current[2]
            left = 2 * i + 1
            if left < size:
                heapq.heappush(frontier, (heap[left], left))
                if left + 1 < size:
                    heapq.heappush(frontier, (heap[left + 1], left + 1))

    def _is_live(self, entry: _Entry) -> bool:
        current = self._live.get(entry[2])
        return current is not None and current[0] == entry[1]

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)

    def _maybe_compact(self) -> None:
        if len(self._heap) <= 2 * len(self._live) + _COMPACT_SLACK:
            return
        self._heap = [(key, gen, item_id) for item_id, (gen, key, _) in self._live.items()]
        heapq.heapify(self._heap)
