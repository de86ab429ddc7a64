"""The service-job status machine: one enum, one transition table."""

from __future__ import annotations

import enum

__all__ = ["ACTIVE", "DISPATCHED", "QUEUED", "TERMINAL", "IllegalTransition", "JobStatus"]


class JobStatus(enum.Enum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    SCHEDULED = "SCHEDULED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def can_become(self, other: JobStatus) -> bool:
        return other in _TRANSITIONS[self]

    def checked(self, other: JobStatus) -> JobStatus:
        if not self.can_become(other):
            raise IllegalTransition(self, other)
        return other


class IllegalTransition(ValueError):
    def __init__(self, old: JobStatus, new: JobStatus) -> None:
        super().__init__(f"a service job cannot go from {old.value} to {new.value}")
        self.old = old
        self.new = new


S = JobStatus
QUEUED = frozenset({S.SUBMITTED, S.PENDING, S.RUNNABLE})
DISPATCHED = frozenset({S.SCHEDULED, S.STARTING, S.RUNNING})
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED})
ACTIVE = QUEUED | DISPATCHED

# Dispatched jobs may skip phases (a fast job is seen RUNNING then done in one poll), and
# every dispatched phase can fall back to RUNNABLE (retry, capacity error, preemption).
_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.SUBMITTED: frozenset({S.RUNNABLE, S.FAILED}),
    S.PENDING: frozenset({S.RUNNABLE, S.FAILED}),
    S.RUNNABLE: frozenset({S.SCHEDULED, S.FAILED}),
    S.SCHEDULED: frozenset({S.STARTING, S.RUNNING, S.RUNNABLE, S.SUCCEEDED, S.FAILED}),
    S.STARTING: frozenset({S.RUNNING, S.RUNNABLE, S.SUCCEEDED, S.FAILED}),
    S.RUNNING: frozenset({S.RUNNABLE, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
}
