"""The only module that reads wall time or makes random ids; everything else is handed them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "Ids", "RandomIds", "SystemClock"]


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


class RandomIds:
    def job_id(self) -> str:
        return str(uuid.uuid4())

    def attempt_id(self) -> str:
        return uuid.uuid4().hex
