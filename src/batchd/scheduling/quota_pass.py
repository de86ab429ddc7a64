"""One pass over a quota-managed queue (spec §7.4), in four named steps.

1. ``trim``: a share holding more than its limits allow (they were lowered) loses its lowest
   priority, newest jobs down to the limit (cross-share preemption, spec §5.5).
2. ``serve_own``: round-robin over enabled shares in creation order; a head that fits its share's
   own limits is dispatched if the environment has room. If it lacks room the head claims what is
   free (so borrowers cannot take it) and capacity other shares borrow is reclaimed by preemption.
3. ``borrow``: LEND_AND_BORROW heads beyond their own limits, oldest head first (FIFO assignment of
   idle capacity), borrow within their borrow limit and what others lend.
4. ``preempt_in_share``: a head that still waits in a share with in-share preemption stops strictly
   lower-priority jobs of its share whose release makes it fit its own limits.

Disabled shares dispatch nothing and their lanes are left untouched; their jobs still count.
"""

from __future__ import annotations

import heapq
from collections import deque

from batchd.scheduling.capacity import EnvironmentCapacity
from batchd.scheduling.context import PassContext
from batchd.scheduling.heads import LaneWalker
from batchd.scheduling.model import Job, Queue
from batchd.scheduling.plan import PreemptionKind
from batchd.scheduling.preemption import (
    choose,
    newest_first,
    reclaim_victims,
    shortest_running_first,
)
from batchd.scheduling.quota import QuotaBook
from batchd.scheduling.reasons import (
    CROSS_SHARE_PREEMPTION,
    ENVIRONMENT_MAX_RESOURCE,
    IN_SHARE_PREEMPTION,
    BlockReason,
)

__all__ = ["quota_pass"]


def quota_pass(ctx: PassContext, queue: Queue, cap: EnvironmentCapacity) -> None:
    _QuotaPass(ctx, queue, cap).run()


class _QuotaPass:
    def __init__(self, ctx: PassContext, queue: Queue, cap: EnvironmentCapacity) -> None:
        self.ctx = ctx
        self.queue = queue
        self.cap = cap
        self.book = QuotaBook(
            queue.quota_shares,
            cap.env,
            ctx.index.held_by_lanes(queue.name),
            ctx.index.releasing_by_lanes(queue.name),
        )
        self.order = [s.name for s in sorted(queue.quota_shares, key=lambda s: (s.order, s.name))]
        self.walkers: dict[str, LaneWalker] = {}

    def run(self) -> None:
        self.trim()
        self.open_lanes()
        over_own = self.serve_own()
        waiting = self.borrow(over_own)
        self.preempt_in_share(waiting)
        for walker in self.walkers.values():
            if walker.head is not None:
                walker.hold()
            walker.close()

    # -- steps ----------------------------------------------------------------------------------

    def trim(self) -> None:
        for name in self.order:
            over = self.book.excess(name)
            if not over:
                continue
            victims = choose(self._own_jobs(name), over, newest_first, partial=True)
            for job in victims:
                self._preempt(job, PreemptionKind.SHARE_LIMIT_LOWERED, CROSS_SHARE_PREEMPTION)
                self.cap.release_later(job.demand)

    def open_lanes(self) -> None:
        lanes = self.ctx.index.lanes(self.queue.name)
        for name in self.order:
            lane = lanes.get(name)
            if lane is None or not self.book.shares[name].enabled:
                continue
            walker = self.ctx.walker(self.queue, name, lane, self._check(name))
            if walker.head is None:
                walker.close()
            else:
                self.walkers[name] = walker

    def serve_own(self) -> list[str]:
        """Round-robin in-quota dispatch; returns shares whose head exceeds its own limits."""
        ring = deque(self.walkers)
        over_own: list[str] = []
        while ring:
            name = ring.popleft()
            head = self.walkers[name].head
            if head is None:
                continue
            if not self.book.fits_own(name, head.demand):
                over_own.append(name)
            elif self._place(name, head):
                ring.append(name)
            else:
                self._wait_for_own(name, head)
        return over_own

    def borrow(self, over_own: list[str]) -> list[str]:
        """FIFO borrowing; returns shares whose head still waits."""
        waiting: list[str] = []
        heap: list[tuple[int, int, str]] = []
        for name in over_own:
            if self.book.shares[name].strategy == "LEND_AND_BORROW":
                heap.append(self._fifo_entry(name))
            else:
                waiting.append(name)
        heapq.heapify(heap)
        while heap:
            name = heapq.heappop(heap)[2]
            head = self.walkers[name].head
            if head is None:
                continue
            if self.book.fits_own(name, head.demand):
                if not self._place(name, head):
                    self._wait_for_own(name, head)
                    continue
            elif not (self.book.can_borrow(name, head.demand) and self._place(name, head)):
                waiting.append(name)
                continue
            if self.walkers[name].head is not None:
                heapq.heappush(heap, self._fifo_entry(name))
        return waiting

    def preempt_in_share(self, waiting: list[str]) -> None:
        rank = {name: i for i, name in enumerate(self.order)}
        for name in sorted(waiting, key=rank.__getitem__):
            head = self.walkers[name].head
            share = self.book.shares[name]
            if head is None or not share.in_share_preemption:
                continue
            if not self.book.could_fit_own(name, head.demand):
                continue
            need = self.book.shortfall_in_share(name, head.demand)
            lower = self._own_jobs(name, below=head.priority)
            for job in choose(lower, need, shortest_running_first):
                self._preempt(job, PreemptionKind.IN_SHARE, IN_SHARE_PREEMPTION)

    # -- helpers --------------------------------------------------------------------------------

    def _check(self, name: str) -> _HeadCheck:
        return _HeadCheck(self.cap, self.book, name)

    def _place(self, name: str, head: Job) -> bool:
        if not self.cap.fits(head.demand):
            return False
        self.cap.take(head.demand)
        self.book.take(name, head.demand)
        self.walkers[name].dispatch(self.cap.name)
        return True

    def _wait_for_own(self, name: str, head: Job) -> None:
        """The head fits its own limits but not the environment: hold room, reclaim the rest."""
        self.walkers[name].hold()
        missing = self.cap.claim(head.demand)
        if not missing:
            return
        candidates = [
            job
            for other in self.order
            if other != name
            and any(self.book.borrowed_after_stops(other, unit) for unit in missing)
            for job in self._own_jobs(other)
        ]
        for job in reclaim_victims(self.book, missing, candidates):
            self._preempt(job, PreemptionKind.CROSS_SHARE, CROSS_SHARE_PREEMPTION)
            self.cap.release_later(job.demand)
        self.cap.claim(missing)

    def _own_jobs(self, name: str, below: int | None = None) -> list[Job]:
        """The share's dispatched jobs that may still be preempted (priority under ``below``)."""
        jobs = self.ctx.index.dispatched_in_lane(self.queue.name, name).values()
        is_free = self.ctx.log.is_free
        env = self.cap.name
        return [
            j
            for j in jobs
            if (below is None or j.priority < below) and j.environment == env and is_free(j)
        ]

    def _preempt(self, job: Job, kind: PreemptionKind, reason: str) -> None:
        self.ctx.log.preempt(job, kind, reason)
        self.book.mark_releasing(job.lane, job.demand)

    def _fifo_entry(self, name: str) -> tuple[int, int, str]:
        head = self.walkers[name].head
        assert head is not None
        return (head.created_at, head.seq, name)


class _HeadCheck:
    """Why a quota share's head can never run: environment first, then the share's limits."""

    __slots__ = ("_book", "_cap", "_share")

    def __init__(self, cap: EnvironmentCapacity, book: QuotaBook, share: str) -> None:
        self._cap = cap
        self._book = book
        self._share = share

    def __call__(self, job: Job) -> BlockReason | None:
        if not self._cap.can_ever_fit(job.demand):
            return ENVIRONMENT_MAX_RESOURCE
        return self._book.static_reason(self._share, job.demand)
