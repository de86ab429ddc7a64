"""Read-only views for GetJobQueueSnapshot (spec §3.14).

``earliest_time_at_position`` is the last event that can have put a job where it is: its own
arrival, the arrival of any job listed ahead of it (a later arrival ahead of it pushed it back), or
the last time a job left the queue's lanes (everyone behind moved up). For a FIFO queue that is
exactly "the later of created_at and the time the job ahead of it left"; for fair-share and quota
queues, whose order also moves with usage, it is a lower bound.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from batchd.scheduling.fairshare import fairshare_order
from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.model import Environment, Job, Queue, SchedulingState
from batchd.scheduling.quota import QuotaBook

__all__ = [
    "CapacityUsage",
    "FairshareUtilization",
    "QueuePosition",
    "QueueSnapshot",
    "QueueUtilization",
    "ShareUtilization",
    "front_of_queue",
    "front_of_quota_shares",
    "snapshot",
    "utilization",
]

_TOP_SHARES = 20


class QueuePosition(NamedTuple):
    job_id: str
    earliest_time_at_position: int


@dataclass(frozen=True, slots=True)
class CapacityUsage:
    unit: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ShareUtilization:
    name: str
    usage: tuple[CapacityUsage, ...]


@dataclass(frozen=True, slots=True)
class FairshareUtilization:
    active_share_count: int
    top: tuple[ShareUtilization, ...]


@dataclass(frozen=True, slots=True)
class QueueUtilization:
    """Capacity held by a queue's dispatched jobs, by instance type."""

    total: tuple[CapacityUsage, ...]
    fairshare: FairshareUtilization | None = None
    quota_shares: tuple[ShareUtilization, ...] | None = None


def front_of_queue(
    state: SchedulingState,
    index: JobIndex,
    ledger: UsageLedger,
    queue: str,
    now: int,
    *,
    limit: int = 100,
) -> list[QueuePosition]:
    """The first ``limit`` RUNNABLE jobs in the order the planner would dispatch them.

    The order assumes each job fits when its turn comes: FIFO is lane order; fair share replays
    the share selection; quota shares replay in-quota round-robin, then FIFO borrowing, then a
    round-robin of what must wait for its share's own jobs to finish. Blocked heads are listed at
    their turn, and disabled quota shares are left out (they dispatch nothing).
    """
    config = state.queues[queue]
    if config.kind == "FAIRSHARE":
        jobs = fairshare_order(index, ledger, config, now, limit)
    elif config.kind == "QUOTA":
        jobs = _quota_order(state, index, config, limit)
    else:
        jobs = _lane_order(index, config, limit)
    return _positions(jobs, index.last_left_at(queue) or 0)


def front_of_quota_shares(
    state: SchedulingState, index: JobIndex, queue: str
) -> dict[str, list[QueuePosition]]:
    """Each quota share's first RUNNABLE job (an empty list for a share with none)."""
    config = state.queues[queue]
    lanes = index.lanes(queue)
    left = index.last_left_at(queue) or 0
    fronts: dict[str, list[QueuePosition]] = {}
    for share in sorted(config.quota_shares, key=lambda s: (s.order, s.name)):
        lane = lanes.get(share.name)
        head = lane.first() if lane is not None else None
        fronts[share.name] = _positions([head], left) if head is not None else []
    return fronts


def utilization(state: SchedulingState, index: JobIndex, queue: str) -> QueueUtilization:
    """Totals by instance type; the top 20 fair shares by instances held; every quota share."""
    config = state.queues[queue]
    total = _usage(index.held_by_queue(queue))
    held = index.held_by_lanes(queue)
    if config.kind == "FAIRSHARE":
        using = [ShareUtilization(name, _usage(h)) for name, h in held.items() if h]
        top = sorted(using, key=_heaviest_first)[:_TOP_SHARES]
        return QueueUtilization(total, fairshare=FairshareUtilization(len(using), tuple(top)))
    if config.kind == "QUOTA":
        shares = [
            ShareUtilization(share.name, _usage(held.get(share.name, {})))
            for share in config.quota_shares
        ]
        return QueueUtilization(total, quota_shares=tuple(sorted(shares, key=_heaviest_first)))
    return QueueUtilization(total)


def _usage(held: Mapping[str, int]) -> tuple[CapacityUsage, ...]:
    return tuple(CapacityUsage(unit, count) for unit, count in sorted(held.items()) if count)


def _heaviest_first(share: ShareUtilization) -> tuple[int, str]:
    return (-sum(u.quantity for u in share.usage), share.name)


def _positions(jobs: Sequence[Job], left_at: int) -> list[QueuePosition]:
    latest = left_at
    positions: list[QueuePosition] = []
    for job in jobs:
        latest = max(latest, job.created_at)
        positions.append(QueuePosition(job.job_id, latest))
    return positions


def _lane_order(index: JobIndex, queue: Queue, limit: int) -> list[Job]:
    lanes = index.lanes(queue.name)
    merged = heapq.merge(
        *(lanes[name] for name in sorted(lanes)), key=lambda j: (j.created_at, j.seq)
    )
    return [job for _, job in zip(range(limit), merged, strict=False)]


def _quota_order(state: SchedulingState, index: JobIndex, queue: Queue, limit: int) -> list[Job]:
    env = state.environments.get(queue.environment or "") or Environment("", False, {})
    replay = _QuotaReplay(queue, env, index)
    replay.serve_own(limit)
    replay.borrow(limit)
    replay.drain(limit)
    return replay.order


class _QuotaReplay:
    """quota_pass's order, against quota only and with the environment assumed to have room."""

    def __init__(self, queue: Queue, env: Environment, index: JobIndex) -> None:
        self.book = QuotaBook(
            queue.quota_shares,
            env,
            index.held_by_lanes(queue.name),
            index.releasing_by_lanes(queue.name),
        )
        lanes = index.lanes(queue.name)
        self.cursors: dict[str, Iterator[Job]] = {}
        self.heads: dict[str, Job] = {}
        for share in sorted(queue.quota_shares, key=lambda s: (s.order, s.name)):
            lane = lanes.get(share.name)
            if lane is not None and share.enabled:
                self.cursors[share.name] = iter(lane)
                self._advance(share.name)
        self.order: list[Job] = []
        self.waiting: list[str] = []

    def serve_own(self, limit: int) -> None:
        ring = deque(self.heads)
        while ring and len(self.order) < limit:
            name = ring.popleft()
            head = self.heads.get(name)
            if head is None:
                continue
            if self.book.fits_own(name, head.demand):
                self._take(name, head)
                ring.append(name)
            else:
                self.waiting.append(name)

    def borrow(self, limit: int) -> None:
        heap = [(self.heads[n].created_at, self.heads[n].seq, n) for n in self.waiting]
        heapq.heapify(heap)
        self.waiting = []
        while heap and len(self.order) < limit:
            name = heapq.heappop(heap)[2]
            head = self.heads[name]
            if self.book.fits_own(name, head.demand) or self.book.can_borrow(name, head.demand):
                self._take(name, head)
                if name in self.heads:
                    following = self.heads[name]
                    heapq.heappush(heap, (following.created_at, following.seq, name))
            else:
                self.waiting.append(name)

    def drain(self, limit: int) -> None:
        rank = {name: i for i, name in enumerate(self.cursors)}
        ring = deque(sorted(set(self.waiting) & set(self.heads), key=rank.__getitem__))
        while ring and len(self.order) < limit:
            name = ring.popleft()
            self.order.append(self.heads[name])
            self._advance(name)
            if name in self.heads:
                ring.append(name)

    def _take(self, name: str, head: Job) -> None:
        self.order.append(head)
        self.book.take(name, head.demand)
        self._advance(name)

    def _advance(self, name: str) -> None:
        following = next(self.cursors[name], None)
        if following is None:
            self.heads.pop(name, None)
        else:
            self.heads[name] = following


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What GetJobQueueSnapshot reports of one queue at ``at``, before it becomes wire JSON."""

    at: int
    front: list[QueuePosition]
    utilization: QueueUtilization
    # Each quota share's front, for a quota-share queue; None for the other kinds.
    quota_share_fronts: dict[str, list[QueuePosition]] | None = None
    # Each active fair share's decayed usage (instance-seconds), for a fair-share queue; not on
    # the wire (the dashboard shows it next to the weights).
    decayed_usage: dict[str, float] | None = None


def snapshot(
    state: SchedulingState, index: JobIndex, ledger: UsageLedger, queue: str, now: int
) -> QueueSnapshot | None:
    """The queue's front and utilization; None for a queue the configuration does not hold."""
    config = state.queues.get(queue)
    if config is None:
        return None
    fronts = front_of_quota_shares(state, index, queue) if config.kind == "QUOTA" else None
    decayed = None
    if config.kind == "FAIRSHARE":
        decayed = {s: ledger.usage(queue, s, now) for s in ledger.active_shares(queue, now)}
    return QueueSnapshot(
        at=now,
        front=front_of_queue(state, index, ledger, queue, now),
        utilization=utilization(state, index, queue),
        quota_share_fronts=fronts,
        decayed_usage=decayed,
    )
