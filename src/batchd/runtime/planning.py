"""The planner's incremental state, kept in step with the jobs the runtime changes.

``Planning`` owns the ``JobIndex`` and ``UsageLedger`` the pure planner reads and the
configuration it plans over. The runtime reports every change of a job to it; it turns jobs
into the planner's small records and hands back the planner's typed ``Plan``. No I/O here:
the configuration is read elsewhere (``configuration.py``) and handed in.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping
from types import MappingProxyType

from batchd.domain.jobs import ServiceJob
from batchd.domain.status import DISPATCHED, JobStatus
from batchd.runtime.configuration import Configuration
from batchd.scheduling import model as sm
from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.plan import Plan
from batchd.scheduling.planner import plan as plan_pass
from batchd.scheduling.queue_view import QueueSnapshot, snapshot
from batchd.scheduling.timing import next_due

__all__ = ["Planning", "job_view"]

_PLANNED = DISPATCHED | {JobStatus.RUNNABLE}
_DEMANDS: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}


def _shared_demand(demand: Mapping[str, int]) -> Mapping[str, int]:
    """One mapping per distinct demand: a million queued jobs ask for a handful of shapes."""
    key = tuple(sorted(demand.items()))
    found = _DEMANDS.get(key)
    if found is None:
        found = _DEMANDS[key] = MappingProxyType(dict(key))
    return found


def _name(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def job_view(job: ServiceJob) -> sm.Job | None:
    """The planner's record of a job, or None when the planner has nothing to do with it."""
    if job.status not in _PLANNED:
        return None
    current = job.current
    timeout = job.timeout_config.attempt_duration_seconds if job.timeout_config else None
    return sm.Job(
        job_id=job.job_id,
        queue=sys.intern(job.queue_name),
        created_at=job.created_at,
        seq=job.seq,
        priority=job.scheduling_priority or 0,
        share_identifier=_name(job.share_identifier),
        quota_share_name=_name(job.quota_share_name),
        demand=_shared_demand(job.demand),
        status=job.status.value,  # type: ignore[arg-type]
        environment=current.environment if current else None,
        scheduled_at=current.scheduled_at if current else None,
        started_at=current.started_at if current else None,
        attempt_timeout_seconds=timeout,
        blocked_reason=job.blocked_code,
        blocked_since=job.blocked_since,
        capacity_failed=job.capacity_failed,
        stopping=bool(current and current.stop_kind),
    )


class Planning:
    def __init__(self, default_backend: str, config: Configuration | None = None) -> None:
        self.default_backend = default_backend
        self.index = JobIndex()
        self.ledger = UsageLedger()
        self.config = Configuration()
        self.configure(config or Configuration())

    def configure(self, config: Configuration) -> None:
        """Plan over ``config`` from now on; jobs and usage carry over."""
        self.config = config
        for queue in config.state.queues.values():
            if queue.fairshare is not None:
                self.ledger.configure(queue.name, queue.fairshare.share_decay_seconds)

    def backend_of(self, environment: str) -> str:
        return self.config.backends.get(environment, self.default_backend)

    # -- jobs ------------------------------------------------------------------------------

    def add(self, job: ServiceJob) -> None:
        """A job the planner has not seen (at start, or just admitted)."""
        self._replace(job)
        if job.dispatched and job.current is not None and job.share_identifier:
            self.ledger.start(
                job.queue_name,
                job.share_identifier,
                sum(job.demand.values()),
                job.current.scheduled_at,
            )

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.index

    def changed(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        """``old`` became ``new`` at ``now``: fair-share usage accrues while a job holds
        capacity, and a job leaves the index when the planner has nothing more to do with it."""
        share = new.share_identifier
        if share and old.dispatched != new.dispatched:
            instances = sum(new.demand.values())
            if new.dispatched:
                self.ledger.start(new.queue_name, share, instances, now)
            else:
                self.ledger.stop(new.queue_name, share, instances, now)
        self._replace(new)

    def _replace(self, job: ServiceJob) -> None:
        view = job_view(job)
        if view is None:
            if job.job_id in self.index:
                self.index.remove(job.job_id, at=job.stopped_at)
        elif job.job_id in self.index:
            self.index.replace(view)
        else:
            self.index.add(view)

    def share_active(self, queue: str, share: str) -> bool:
        """Whether a RUNNABLE or dispatched job of fair share ``share`` is in ``queue``."""
        # A lane is named after its quota share, else its share identifier: check which.
        lane = self.index.lanes(queue).get(share)
        waiting = lane.first() if lane is not None else None
        if waiting is not None and waiting.share_identifier == share:
            return True
        held = self.index.dispatched_in_lane(queue, share)
        return any(job.share_identifier == share for job in itertools.islice(held.values(), 1))

    # -- planning --------------------------------------------------------------------------

    def plan(self, now: int) -> Plan:
        self.ledger.prune(now)
        return plan_pass(self.config.state, self.index, self.ledger, now)

    def next_due(self, after: int) -> int | None:
        """The next time later than ``after`` at which time alone changes a decision."""
        return next_due(self.config.state, self.index, self.ledger, after)

    def snapshot(self, queue: str, now: int) -> QueueSnapshot | None:
        return snapshot(self.config.state, self.index, self.ledger, queue, now)
