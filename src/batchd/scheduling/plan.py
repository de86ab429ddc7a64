"""The planner's output: decisions, each carrying the statusReason the runtime records."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from batchd.scheduling.reasons import PREEMPTION_PREFIX, BlockCode

__all__ = [
    "AttemptTimeout",
    "Block",
    "Decision",
    "Dispatch",
    "Plan",
    "Preempt",
    "PreemptionKind",
    "TimeLimitTerminate",
    "Unblock",
]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Start the RUNNABLE job in ``environment`` (it becomes SCHEDULED)."""

    job_id: str
    environment: str


@dataclass(frozen=True, slots=True)
class Block:
    """The RUNNABLE head is blocked: set statusReason to ``reason`` and start its clock now."""

    job_id: str
    code: BlockCode
    reason: str


@dataclass(frozen=True, slots=True)
class Unblock:
    """The RUNNABLE job is no longer a blocked head: clear statusReason and its clock."""

    job_id: str


class PreemptionKind(enum.StrEnum):
    CROSS_SHARE = "CROSS_SHARE"
    IN_SHARE = "IN_SHARE"
    SHARE_LIMIT_LOWERED = "SHARE_LIMIT_LOWERED"


@dataclass(frozen=True, slots=True)
class Preempt:
    """Stop the dispatched job and return it to RUNNABLE (or FAILED when out of retries)."""

    job_id: str
    kind: PreemptionKind
    reason: str

    @property
    def attempt_reason(self) -> str:
        """The text for ``recentPreemptedAttempts[].statusReason`` (no in-progress prefix)."""
        return self.reason.removeprefix(PREEMPTION_PREFIX)


@dataclass(frozen=True, slots=True)
class TimeLimitTerminate:
    """A ``jobStateTimeLimitActions`` TERMINATE fired: the RUNNABLE head becomes FAILED."""

    job_id: str
    code: BlockCode
    reason: str


@dataclass(frozen=True, slots=True)
class AttemptTimeout:
    """The dispatched job ran past ``attemptDurationSeconds``: stop it, then FAILED, no retry."""

    job_id: str
    reason: str


Decision = Dispatch | Block | Unblock | Preempt | TimeLimitTerminate | AttemptTimeout


@dataclass(frozen=True, slots=True)
class Plan(Sequence[Decision]):
    """The decisions of one pass, in the order they were taken."""

    decisions: tuple[Decision, ...] = ()

    @overload
    def __getitem__(self, index: int) -> Decision: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Decision]: ...
    def __getitem__(self, index: int | slice) -> Decision | Sequence[Decision]:
        return self.decisions[index]

    def __len__(self) -> int:
        return len(self.decisions)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.decisions)

    @property
    def dispatches(self) -> tuple[Dispatch, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Dispatch))

    @property
    def preemptions(self) -> tuple[Preempt, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Preempt))
