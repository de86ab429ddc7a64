"""Choosing preemption victims (spec §5.5, §7.4's concrete rule).

Victims are dispatched jobs not already being stopped. Each rule takes candidates in its order and
keeps those that free some still-missing instance type until nothing is missing; a rule that cannot
cover the need preempts nobody, since stopping work that does not let the waiting job run only
loses that work. Lowered share limits are the exception: whatever is over the limit goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from batchd.scheduling.model import Job
from batchd.scheduling.quota import QuotaBook

__all__ = [
    "choose",
    "newest_first",
    "reclaim_victims",
    "shortest_running_first",
]

_OrderKey = Callable[[Job], tuple[int, ...]]


def _running_since(job: Job) -> int:
    return job.started_at or job.scheduled_at or 0


def shortest_running_first(job: Job) -> tuple[int, ...]:
    """In-share rule: lowest priority first, then the job that has run the least."""
    return (job.priority, -_running_since(job), -job.seq)


def newest_first(job: Job) -> tuple[int, ...]:
    """Lowered-limit rule: lowest priority first, then the most recently dispatched."""
    return (job.priority, -(job.scheduled_at or 0), -job.seq)


def choose(
    candidates: Iterable[Job],
    need: Mapping[str, int],
    order: _OrderKey,
    *,
    partial: bool = False,
) -> list[Job]:
    """Victims freeing ``need`` (instances per type); empty when it cannot be covered."""
    missing = {unit: count for unit, count in need.items() if count > 0}
    chosen: list[Job] = []
    for job in sorted(candidates, key=order):
        if not missing:
            break
        if not any(job.demand.get(unit, 0) > 0 for unit in missing):
            continue
        chosen.append(job)
        _subtract(missing, job.demand)
    if missing and not partial:
        return []
    return chosen


def reclaim_victims(
    book: QuotaBook, need: Mapping[str, int], candidates: Iterable[Job]
) -> list[Job]:
    """Cross-share rule: jobs of shares borrowing a missing type; most borrowed instances of the
    missing types first, then lowest priority, then the job that has run the least."""
    candidates = list(candidates)
    borrowing = {
        (job.lane, unit): book.borrowed_after_stops(job.lane, unit)
        for job in candidates
        for unit in need
    }

    def borrowed_by(job: Job) -> int:
        return sum(min(job.demand.get(unit, 0), borrowing[(job.lane, unit)]) for unit in need)

    ranked = sorted(candidates, key=lambda job: (-borrowed_by(job), *shortest_running_first(job)))
    missing = {unit: count for unit, count in need.items() if count > 0}
    chosen: list[Job] = []
    for job in ranked:
        if not missing:
            break
        useful = [u for u in missing if job.demand.get(u, 0) and borrowing[(job.lane, u)] > 0]
        if not useful:
            continue
        chosen.append(job)
        _subtract(missing, job.demand)
        for unit in useful:
            borrowing[(job.lane, unit)] -= job.demand[unit]
    return [] if missing else chosen


def _subtract(missing: dict[str, int], demand: Mapping[str, int]) -> None:
    for unit in list(missing):
        missing[unit] -= demand.get(unit, 0)
        if missing[unit] <= 0:
            del missing[unit]
