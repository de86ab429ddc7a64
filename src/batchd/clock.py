"""The only module that reads wall time or makes random ids; everything else is handed them."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "Ids", "RandomIds", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def now_utc(self) -> datetime: ...


class Ids(Protocol):
    def job_id(self) -> str: ...

    def attempt_id(self) -> str: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now_utc(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """Time that moves only when told to: for tests and simulations of the real runtime."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.now / 1000, UTC)

    def set(self, now_ms: int) -> None:
        if now_ms < self.now:
            raise ValueError(f"time does not go back: {now_ms} < {self.now}")
        self.now = now_ms


class RandomIds:
    """Random version-4 UUIDs. The kernel's randomness is read 4 KiB at a time: a
    ``getrandom`` call per id cost more than the rest of making the id."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def _uuid(self) -> uuid.UUID:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(4096), 0
        raw = self._pool[self._at : self._at + 16]
        self._at += 16
        return uuid.UUID(bytes=raw, version=4)

    def job_id(self) -> str:
        return str(self._uuid())

    def attempt_id(self) -> str:
        return self._uuid().hex
