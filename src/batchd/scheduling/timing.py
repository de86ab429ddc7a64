"""When the planner will next decide something that no event triggers: the passing of time.

A scheduler driven by a virtual clock (the test fixture, the simulator) jumps from one such
time to the next instead of ticking through every second in between. Three things change
with time alone: an attempt reaches its ``attemptDurationSeconds``; a blocked head reaches a
``jobStateTimeLimitActions`` limit; an idle fair share is forgotten (which can change the
reserved fraction). Fair-share order also moves with decay, but only matters when capacity
frees, which is an event of its own.
"""

from __future__ import annotations

from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.model import SchedulingState

__all__ = ["next_due"]


def next_due(
    state: SchedulingState, index: JobIndex, ledger: UsageLedger, after: int
) -> int | None:
    """The earliest time later than ``after`` at which a pass may decide something new."""
    times = [index.next_deadline(), ledger.next_expiry(), *_time_limits(state, index)]
    later = [t for t in times if t is not None and t > after]
    return min(later, default=None)


def _time_limits(state: SchedulingState, index: JobIndex) -> list[int]:
    found: list[int] = []
    for queue in state.queues.values():
        if not queue.time_limit_actions:
            continue
        for lane in index.lanes(queue.name):
            for job_id in index.blocked_in_lane(queue.name, lane):
                job = index.get(job_id)
                if job is None or job.blocked_since is None or job.blocked_reason is None:
                    continue
                limit = queue.time_limit_seconds(job.blocked_reason)
                if limit is not None:
                    found.append(job.blocked_since + limit * 1000)
    return found
