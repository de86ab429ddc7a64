"""Adapter between the runtime's domain objects and the pure planner.

It owns the planner's incremental state (``JobIndex``, ``UsageLedger``) and its
configuration snapshot, translates jobs into planner records as they change, and translates
the planner's decisions back into the runtime's vocabulary.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from batchd.domain.arns import Arns
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.domain.status import DISPATCHED, JobStatus
from batchd.scheduling import model as sm
from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.plan import (
    AttemptTimeout,
    Block,
    Dispatch,
    Preempt,
    TimeLimitTerminate,
    Unblock,
)
from batchd.scheduling.plan import Decision as PlannerDecision
from batchd.scheduling.planner import plan as plan_pass
from batchd.scheduling.queue_view import (
    CapacityUsage,
    QueuePosition,
    front_of_queue,
    front_of_quota_shares,
    utilization,
)
from batchd.storage.store import Store

__all__ = ["BACKEND_TAG", "Action", "Decision", "Planning"]

BACKEND_TAG = "batchd:backend"
_PLANNED = DISPATCHED | {JobStatus.RUNNABLE}


@dataclass(frozen=True)
class Decision:
    kind: str  # dispatch | block | unblock | time-limit | preempt | timeout
    job_id: str
    reason: str = ""
    code: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Action:
    kind: str  # start | stop
    job_id: str


def _decision(d: PlannerDecision) -> Decision:
    if isinstance(d, Dispatch):
        return Decision("dispatch", d.job_id, environment=d.environment)
    if isinstance(d, Block):
        return Decision("block", d.job_id, d.reason, code=str(d.code))
    if isinstance(d, Unblock):
        return Decision("unblock", d.job_id)
    if isinstance(d, TimeLimitTerminate):
        return Decision("time-limit", d.job_id, d.reason, code=str(d.code))
    if isinstance(d, Preempt):
        return Decision("preempt", d.job_id, d.reason)
    assert isinstance(d, AttemptTimeout)
    return Decision("timeout", d.job_id, d.reason)


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
    def __init__(self, store: Store, arns: Arns, default_backend: str) -> None:
        self.store = store
        self.arns = arns
        self.default_backend = default_backend
        self.index = JobIndex()
        self.ledger = UsageLedger()
        self.state = sm.SchedulingState.of([], [])
        self._backends: dict[str, str] = {}
        self._training_jobs: dict[str, str] = {}

    # -- configuration ---------------------------------------------------------------------

    async def reload(self) -> None:
        envs = [env for _, env in await self.store.resources(ServiceEnvironment)]
        policies = {p.arn: p for _, p in await self.store.resources(SchedulingPolicy)}
        shares: dict[str, list[sm.QuotaShare]] = {}
        for order, share in await self.store.resources(QuotaShare):
            queue = share.job_queue_arn.rsplit("/", 1)[-1]
            shares.setdefault(queue, []).append(_quota_share(share, order))
        queues = [
            self._queue(q, policies, shares.get(q.job_queue_name, []))
            for _, q in await self.store.resources(JobQueue)
        ]
        self.state = sm.SchedulingState.of(
            (
                sm.Environment(
                    e.service_environment_name,
                    e.usable,
                    {c.capacity_unit: c.max_capacity for c in e.capacity_limits},
                )
                for e in envs
            ),
            queues,
        )
        self._backends = {
            e.service_environment_name: e.tags.get(BACKEND_TAG, self.default_backend) for e in envs
        }

    def _queue(
        self,
        queue: JobQueue,
        policies: Mapping[str, SchedulingPolicy],
        shares: list[sm.QuotaShare],
    ) -> sm.Queue:
        policy = policies.get(queue.scheduling_policy_arn or "")
        env_arn = queue.environment_arn
        fairshare = None
        kind: sm.QueueKind = "FIFO"
        if policy is not None and policy.kind == "QUOTA":
            kind = "QUOTA"
        elif policy is not None:
            kind = "FAIRSHARE"
            fp = policy.fairshare_policy
            fairshare = sm.FairsharePolicy(
                share_decay_seconds=(fp.share_decay_seconds or 0) if fp else 0,
                compute_reservation=(fp.compute_reservation or 0) if fp else 0,
                weights=tuple(
                    (s.share_identifier, s.weight_factor if s.weight_factor is not None else 1.0)
                    for s in (fp.share_distribution if fp else ())
                ),
            )
            self.ledger.configure(queue.job_queue_name, fairshare.share_decay_seconds)
        return sm.Queue(
            name=queue.job_queue_name,
            priority=queue.priority,
            environment=self.arns.resource_of(env_arn, "service-environment") if env_arn else None,
            kind=kind,
            fairshare=fairshare,
            quota_shares=tuple(shares) if kind == "QUOTA" else (),
            time_limit_actions=tuple(
                sm.TimeLimitAction(a.reason, a.max_time_seconds)
                for a in queue.job_state_time_limit_actions
            ),
        )

    def backend_of(self, environment: str) -> str:
        return self._backends.get(environment, self.default_backend)

    # -- jobs ------------------------------------------------------------------------------

    def add(self, job: ServiceJob) -> None:
        """A job the planner has not seen (at start, or just submitted)."""
        self.replace(job)
        if job.dispatched and job.current is not None and job.share_identifier:
            self.ledger.start(
                job.queue_name,
                job.share_identifier,
                sum(job.demand.values()),
                job.current.scheduled_at,
            )

    def replace(self, job: ServiceJob) -> None:
        view = job_view(job)
        if job.current is not None:
            self._training_jobs[job.current.training_job_name] = job.job_id
        if view is None:
            self.remove(job)
        elif job.job_id in self.index:
            self.index.replace(view)
        else:
            self.index.add(view)

    def remove(self, job: ServiceJob) -> None:
        if job.job_id in self.index:
            self.index.remove(job.job_id, at=job.stopped_at)
        if job.current is not None:
            self._training_jobs.pop(job.current.training_job_name, None)

    def released(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        """Fair-share usage accrues while a job holds capacity."""
        share = new.share_identifier
        if not share or old.dispatched == new.dispatched:
            return
        instances = sum(new.demand.values())
        if new.dispatched:
            self.ledger.start(new.queue_name, share, instances, now)
        else:
            self.ledger.stop(new.queue_name, share, instances, now)
        if old.current is not None and new.current is None:
            self._training_jobs.pop(old.current.training_job_name, None)

    def job_of_training_job(self, name: str) -> str | None:
        return self._training_jobs.get(name)

    def live_training_jobs(self) -> Mapping[str, str]:
        return self._training_jobs

    # -- planning --------------------------------------------------------------------------

    def plan(self, now: int) -> list[Decision]:
        self.ledger.prune(now)
        return [_decision(d) for d in plan_pass(self.state, self.index, self.ledger, now)]

    def snapshot(self, queue: JobQueue, now: int) -> dict[str, Any]:
        name = queue.job_queue_name
        config = self.state.queues.get(name)
        if config is None:
            return {}
        front = front_of_queue(self.state, self.index, self.ledger, name, now)
        used = utilization(self.state, self.index, name)
        util: dict[str, Any] = {"totalCapacityUsage": _usage(used.total), "lastUpdatedAt": now}
        if used.fairshare is not None:
            util["fairshareUtilization"] = {
                "activeShareCount": used.fairshare.active_share_count,
                "topCapacityUtilization": [
                    {"shareIdentifier": s.name, "capacityUsage": _usage(s.usage)}
                    for s in used.fairshare.top
                ],
            }
        out: dict[str, Any] = {
            "frontOfQueue": {"jobs": self._positions(front), "lastUpdatedAt": now},
            "queueUtilization": util,
        }
        if config.kind == "QUOTA":
            util["quotaShareUtilization"] = {
                "topCapacityUtilization": [
                    {"quotaShareName": s.name, "capacityUsage": _usage(s.usage)}
                    for s in used.quota_shares or ()
                ]
            }
            fronts = front_of_quota_shares(self.state, self.index, name)
            out["frontOfQuotaShares"] = {
                "quotaShares": {k: self._positions(v) for k, v in fronts.items()},
                "lastUpdatedAt": now,
            }
        return out

    def _positions(self, positions: list[QueuePosition]) -> list[dict[str, Any]]:
        return [
            {
                "jobArn": self.arns.service_job(p.job_id),
                "earliestTimeAtPosition": p.earliest_time_at_position,
            }
            for p in positions
        ]


def _usage(usage: tuple[CapacityUsage, ...]) -> list[dict[str, Any]]:
    return [{"capacityUnit": u.unit, "quantity": u.quantity} for u in usage]


def _quota_share(share: QuotaShare, order: int) -> sm.QuotaShare:
    sharing = share.resource_sharing_configuration
    return sm.QuotaShare(
        name=share.quota_share_name,
        enabled=share.state == "ENABLED",
        limits={c.capacity_unit: c.max_capacity for c in share.capacity_limits},
        strategy=sharing.strategy,  # type: ignore[arg-type]
        borrow_limit=sharing.borrow_limit if sharing.borrow_limit is not None else -1,
        in_share_preemption=share.preemption_configuration.in_share_preemption == "ENABLED",
        order=order,
    )
