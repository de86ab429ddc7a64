"""Waiting for a condition instead of sleeping for a guess.

A fixed sleep is either too short under load (a flaky test) or too long everywhere else; a
poll returns as soon as the condition holds and fails loudly, with the last value, when it
never does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

__all__ = ["clock_passes", "wait_until", "wait_until_async"]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.005) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.005
) -> T:
    """``wait_until`` inside an event loop: the loop keeps running while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


def clock_passes(moment: datetime | int) -> None:
    """Return once the wall clock reads later than ``moment`` (as boto3 returns a timestamp,
    or epoch milliseconds): whatever the server stamps from now on is strictly later."""
    epoch_ms = round(moment.timestamp() * 1000) if isinstance(moment, datetime) else moment
    wait_until(lambda: time.time_ns() // 1_000_000 > epoch_ms, timeout=5, interval=0.001)
