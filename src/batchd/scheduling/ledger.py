"""Decayed fair-share usage per (queue, share identifier), kept incrementally.

Usage at time t is the integral of the share's running instances, each instant weighted by
exp(-(t - instant) / W) with W the queue's decay window in seconds (spec §7.3): recent work weighs
most and finished work still counts while it is recent. Because the running count is constant
between two start/stop events, the integral has a closed form, so each share keeps only
(value, at, running) and is read at any ``now`` in O(1) without mutation.

A share that has been idle for a whole window is inactive (spec §7.3) and is forgotten: its usage
reads as zero from then on and its entry is pruned.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_DECAY_SECONDS", "UsageLedger", "decay_window_seconds"]

DEFAULT_DECAY_SECONDS: Final = 600


def decay_window_seconds(share_decay_seconds: int) -> int:
    """The effective window: 0 means the 600 s default (spec §12 #22)."""
    return share_decay_seconds if share_decay_seconds > 0 else DEFAULT_DECAY_SECONDS


@dataclass(slots=True)
class _Usage:
    value: float
    at: int
    running: int


class UsageLedger:
    """Fair-share usage the runtime feeds with starts and stops, read by the planner.

    Call ``configure`` with a queue's ``shareDecaySeconds`` when its policy is loaded or changed;
    queues never configured use the 600 s default.
    """

    def __init__(self) -> None:
        self._windows: dict[str, int] = {}
        self._shares: dict[str, dict[str, _Usage]] = {}
        self._idle: list[tuple[int, int, str, str]] = []

    def configure(self, queue: str, share_decay_seconds: int) -> None:
        self._windows[queue] = decay_window_seconds(share_decay_seconds)

    def window_seconds(self, queue: str) -> int:
        return self._windows.get(queue, DEFAULT_DECAY_SECONDS)

    def start(self, queue: str, share: str, instances: int, at_ms: int) -> None:
        """``instances`` began to be held by the share at ``at_ms``."""
        self._change(queue, share, instances, at_ms)

    def stop(self, queue: str, share: str, instances: int, at_ms: int) -> None:
        """``instances`` stopped being held by the share at ``at_ms``."""
        self._change(queue, share, -instances, at_ms)

    def usage(self, queue: str, share: str, now: int) -> float:
        """Decayed instance-seconds of the share at ``now``."""
        entry = self._shares.get(queue, {}).get(share)
        if entry is None or self._expired(queue, entry, now):
            return 0.0
        return _advanced(entry, now, self.window_seconds(queue))

    def running(self, queue: str, share: str) -> int:
        entry = self._shares.get(queue, {}).get(share)
        return entry.running if entry else 0

    def active_shares(self, queue: str, now: int) -> Iterator[str]:
        """Shares holding instances, or that held some within the last window."""
        for share, entry in self._shares.get(queue, {}).items():
            if not self._expired(queue, entry, now):
                yield share

    def next_expiry(self) -> int | None:
        """When the next idle share may be forgotten (a pass may then reserve differently)."""
        return self._idle[0][0] if self._idle else None

    def prune(self, now: int) -> None:
        """Forget shares idle for a whole window; start and stop call this for you."""
        idle = self._idle
        while idle and idle[0][0] <= now:
            _, idle_since, queue, share = heapq.heappop(idle)
            entry = self._shares.get(queue, {}).get(share)
            if entry is None or entry.running or entry.at != idle_since:
                continue
            if self._expired(queue, entry, now):
                self._forget(queue, share)
            else:
                # The window grew since this entry was queued.
                self._queue_idle(queue, share, entry)

    def _change(self, queue: str, share: str, delta: int, at_ms: int) -> None:
        self.prune(at_ms)
        shares = self._shares.setdefault(queue, {})
        entry = shares.get(share)
        if entry is None:
            entry = shares[share] = _Usage(0.0, at_ms, 0)
        else:
            entry.value = _advanced(entry, at_ms, self.window_seconds(queue))
            entry.at = max(entry.at, at_ms)
        entry.running = max(0, entry.running + delta)
        if entry.running == 0:
            self._queue_idle(queue, share, entry)

    def _queue_idle(self, queue: str, share: str, entry: _Usage) -> None:
        expiry = entry.at + self.window_seconds(queue) * 1000
        heapq.heappush(self._idle, (expiry, entry.at, queue, share))

    def _expired(self, queue: str, entry: _Usage, now: int) -> bool:
        return entry.running == 0 and now - entry.at >= self.window_seconds(queue) * 1000

    def _forget(self, queue: str, share: str) -> None:
        shares = self._shares[queue]
        del shares[share]
        if not shares:
            del self._shares[queue]


def _advanced(entry: _Usage, now: int, window_seconds: int) -> float:
    # Events may arrive slightly out of order; usage never runs backwards.
    elapsed = max(0, now - entry.at) / 1000.0
    kept = math.exp(-elapsed / window_seconds)
    return entry.value * kept + entry.running * window_seconds * (1.0 - kept)
