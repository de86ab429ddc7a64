"""Batching: concurrent callers share one trip to the database.

While one batch is in the database, new items queue up; the next batch takes all of them.
Under load a trip carries many items (group commit for submits, one ``IN`` query for
Describes), and under no load an item waits for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Batcher"]


class Batcher(Generic[T, R]):
    def __init__(
        self, run_batch: Callable[[list[T]], Awaitable[Sequence[R]]], max_batch: int = 1000
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._run_batch([item for item, _ in batch])
            except Exception as err:  # every writer of the batch learns the batch failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
