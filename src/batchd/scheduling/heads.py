"""Walking one lane front to back within a pass, and deciding what its head shows (spec §7.5).

Every lane of an active queue is walked at least to its first head, so that a head that cannot
ever run gets its MISCONFIGURATION reason even when no capacity is free, a head whose blocking
reason outlived a ``jobStateTimeLimitActions`` limit is terminated (and the next job becomes the
head), and a job that shows a blocking reason but is no longer the blocked head gets it cleared.
Only changes are emitted: a head already showing the right reason produces no decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet

from batchd.scheduling.lanes import OrderedLane
from batchd.scheduling.model import Job, Queue
from batchd.scheduling.plan import (
    Block,
    Decision,
    Dispatch,
    Preempt,
    PreemptionKind,
    TimeLimitTerminate,
    Unblock,
)
from batchd.scheduling.reasons import INSUFFICIENT_CAPACITY, BlockCode, BlockReason
from batchd.scheduling.reasons import time_limit_reason as _time_limit_reason

__all__ = ["HeadCheck", "LaneWalker", "PassLog"]

HeadCheck = Callable[[Job], BlockReason | None]


class PassLog:
    """The decisions of a pass so far, and the jobs they already settled."""

    __slots__ = ("decided", "decisions", "now")

    def __init__(self, now: int) -> None:
        self.now = now
        self.decisions: list[Decision] = []
        self.decided: set[str] = set()

    def emit(self, decision: Decision) -> None:
        self.decisions.append(decision)
        if not isinstance(decision, Block | Unblock):
            self.decided.add(decision.job_id)

    def preempt(self, job: Job, kind: PreemptionKind, reason: str) -> None:
        self.emit(Preempt(job.job_id, kind, reason))

    def is_free(self, job: Job) -> bool:
        """Whether a dispatched job may still be chosen as a victim."""
        return not job.stopping and job.job_id not in self.decided


class LaneWalker:
    """The current head of one lane: after construction ``head`` is a job that may be dispatched,
    or None when the lane is exhausted or its head is blocked (already reported).

    Finish with ``dispatch`` (then look at ``head`` again) or ``hold`` for every head, then
    ``close`` once.
    """

    __slots__ = (
        "_blocked",
        "_check",
        "_cursor",
        "_kept",
        "_lane",
        "_log",
        "_queue",
        "_started",
        "head",
    )

    def __init__(
        self,
        log: PassLog,
        queue: Queue,
        lane: OrderedLane[Job],
        blocked: AbstractSet[str],
        check: HeadCheck,
    ) -> None:
        self._log = log
        self._queue = queue
        self._lane = lane
        # Most lanes are only looked at up to their head: read it in O(1) and start the ordered
        # walk only when the lane moves past it.
        self._cursor: Iterator[Job] | None = None
        self._started = False
        self._blocked = blocked
        self._check = check
        self._kept: set[str] = set()
        self.head: Job | None = None
        self._settle()

    def dispatch(self, environment: str) -> None:
        head = self._require_head()
        self._log.emit(Dispatch(head.job_id, environment))
        self._settle()

    def hold(self) -> None:
        """The head waits for capacity this pass: it shows a reason only for capacity errors."""
        head = self._require_head()
        self.head = None
        if head.capacity_failed:
            self._keep_blocked(head, INSUFFICIENT_CAPACITY)

    def close(self) -> None:
        """Clear the reason of every job in the lane that is no longer a blocked head."""
        log = self._log
        for job_id in sorted(self._blocked - self._kept):
            if job_id not in log.decided:
                log.emit(Unblock(job_id))

    def _require_head(self) -> Job:
        if self.head is None:
            raise RuntimeError("the lane has no head to act on")
        return self.head

    def _next_job(self) -> Job | None:
        if self._cursor is None:
            if not self._started:
                self._started = True
                return self._lane.first()
            self._cursor = iter(self._lane)
            next(self._cursor, None)  # the head, already read
        return next(self._cursor, None)

    def _settle(self) -> None:
        log = self._log
        while (job := self._next_job()) is not None:
            if job.job_id in log.decided:
                continue
            reason = self._check(job)
            current = reason.code if reason else None
            if current is None and job.capacity_failed:
                current = BlockCode.INSUFFICIENT_CAPACITY
            if current is not None and self._time_is_up(job, current):
                log.emit(TimeLimitTerminate(job.job_id, current, _time_limit_reason(current)))
                continue
            if reason is not None:
                self._keep_blocked(job, reason)
                self.head = None
                return
            self.head = job
            return
        self.head = None

    def _keep_blocked(self, job: Job, reason: BlockReason) -> None:
        self._kept.add(job.job_id)
        if job.blocked_reason != reason.code:
            self._log.emit(Block(job.job_id, reason.code, reason.text))

    def _time_is_up(self, job: Job, code: BlockCode) -> bool:
        if job.blocked_reason != code or job.blocked_since is None:
            return False
        limit = self._queue.time_limit_seconds(code)
        return limit is not None and job.blocked_since + limit * 1000 <= self._log.now
