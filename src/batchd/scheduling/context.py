"""What every step of a pass reads and writes, and the per-queue steps shared by all kinds."""

from __future__ import annotations

from dataclasses import dataclass

from batchd.scheduling.capacity import EnvironmentCapacity
from batchd.scheduling.heads import HeadCheck, LaneWalker, PassLog
from batchd.scheduling.index import JobIndex
from batchd.scheduling.lanes import OrderedLane
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.model import Job, Queue
from batchd.scheduling.reasons import ENVIRONMENT_MAX_RESOURCE, BlockReason

__all__ = ["PassContext", "environment_check", "fifo_pass"]


@dataclass(frozen=True, slots=True)
class PassContext:
    log: PassLog
    index: JobIndex
    ledger: UsageLedger

    @property
    def now(self) -> int:
        return self.log.now

    def walker(
        self, queue: Queue, lane_name: str, lane: OrderedLane[Job], check: HeadCheck
    ) -> LaneWalker:
        blocked = self.index.blocked_in_lane(queue.name, lane_name)
        return LaneWalker(self.log, queue, lane, blocked, check)


def environment_check(cap: EnvironmentCapacity) -> HeadCheck:
    def check(job: Job) -> BlockReason | None:
        return None if cap.can_ever_fit(job.demand) else ENVIRONMENT_MAX_RESOURCE

    return check


def fifo_pass(ctx: PassContext, queue: Queue, cap: EnvironmentCapacity) -> None:
    """Head-of-line per lane (spec §7.2): a head that does not fit stops its lane for this pass."""
    check = environment_check(cap)
    for name, lane in sorted(ctx.index.lanes(queue.name).items()):
        walker = ctx.walker(queue, name, lane, check)
        while walker.head is not None:
            if not cap.fits(walker.head.demand):
                walker.hold()
                break
            cap.take(walker.head.demand)
            walker.dispatch(cap.name)
        walker.close()
