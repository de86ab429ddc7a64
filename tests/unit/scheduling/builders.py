"""Plain-data builders for planner tests, and the runtime's own bookkeeping over them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.jobs import (
    CapacityUsage,
    CurrentAttempt,
    ServiceJob,
    ServiceJobTimeout,
    StopKind,
)
from batchd.domain.status import JobStatus
from batchd.runtime import decisions, outcomes
from batchd.runtime.configuration import Configuration
from batchd.runtime.planning import Planning, job_view
from batchd.scheduling import (
    Dispatch,
    Environment,
    Job,
    JobIndex,
    Plan,
    Queue,
    SchedulingState,
    UsageLedger,
)

M5 = "ml.m5.large"
G6 = "ml.g6.xlarge"

_seq = itertools.count(1)


def env(
    name: str = "env", limit: int | None = 10, enabled: bool = True, **types: int
) -> Environment:
    """An environment with a NUM_INSTANCES limit, or per-type limits (``ml_m5_large=4``)."""
    limits: dict[str, int] = {k.replace("_", "."): v for k, v in types.items()}
    if limit is not None:
        limits["NUM_INSTANCES"] = limit
    return Environment(name, enabled, limits)


def job(
    job_id: str,
    queue: str = "q",
    *,
    at: int = 0,
    n: int = 1,
    demand: Mapping[str, int] | None = None,
    **fields: Any,
) -> Job:
    """A RUNNABLE job needing ``n`` ml.m5.large unless ``demand`` says otherwise."""
    return Job(
        job_id=job_id,
        queue=queue,
        created_at=at,
        seq=fields.pop("seq", next(_seq)),
        demand=dict(demand) if demand is not None else ({M5: n} if n else {}),
        **fields,
    )


def running(job_id: str, queue: str = "q", *, environment: str = "env", **fields: Any) -> Job:
    fields.setdefault("scheduled_at", fields.get("at", 0))
    return job(job_id, queue, status="RUNNING", environment=environment, **fields)


def state(environments: Iterable[Environment], queues: Iterable[Queue]) -> SchedulingState:
    return SchedulingState.of(environments, queues)


def kinds(result: Plan) -> list[tuple[str, str]]:
    """Each decision as (class name, job id)."""
    return [(type(d).__name__, d.job_id) for d in result]


def dispatched(result: Plan) -> list[str]:
    return [d.job_id for d in result if isinstance(d, Dispatch)]


_QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/"
_CAPACITY_ERROR = "CapacityError: Unable to provision requested ML compute capacity"


def _attempt(job_id: str, environment: str, scheduled_at: int, **fields: Any) -> CurrentAttempt:
    name = f"AWSBatch{job_id}"
    return CurrentAttempt(
        attempt_id=job_id,
        training_job_name=name,
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        environment=environment,
        backend="fake",
        scheduled_at=scheduled_at,
        **fields,
    )


def service_job(view: Job) -> ServiceJob:
    """The service job whose planner record is ``view`` (checked: the two must agree)."""
    current = None
    if view.environment is not None:
        current = _attempt(
            view.job_id,
            view.environment,
            view.scheduled_at or 0,
            started_at=view.started_at,
            stop_kind=StopKind.PREEMPT if view.stopping else None,
        )
    blocked = f"{view.blocked_reason} - blocked" if view.blocked_reason else None
    timeout = view.attempt_timeout_seconds
    made = ServiceJob(
        job_id=view.job_id,
        job_arn=f"arn:aws:batch:us-east-1:123456789012:service-job/{view.job_id}",
        job_name=view.job_id,
        job_queue=_QUEUE_ARN + view.queue,
        service_request_payload="{}",
        created_at=view.created_at,
        seq=view.seq,
        status=JobStatus(view.status),
        status_reason=blocked,
        capacity_usage=tuple(CapacityUsage(u, float(n)) for u, n in sorted(view.demand.items())),
        scheduling_priority=view.priority,
        share_identifier=view.share_identifier,
        quota_share_name=view.quota_share_name,
        timeout_config=ServiceJobTimeout(timeout) if timeout is not None else None,
        blocked_since=view.blocked_since,
        capacity_failed=view.capacity_failed,
        current=current,
    )
    assert job_view(made) == view, "the builder's job has no service-job equivalent"
    return made


class Cluster:
    """The runtime's own decision and bookkeeping code (``runtime.decisions``, ``outcomes``
    and ``Planning``) over plain jobs, with no store and no backend: what the planner's
    decisions do to the index and ledger is what the server does."""

    def __init__(self, config: SchedulingState, jobs: Iterable[Job] = ()) -> None:
        self.planning = Planning("fake", Configuration(state=config))
        self.jobs: dict[str, ServiceJob] = {}
        self.ended: list[str] = []
        for view in jobs:
            self.submit(view)

    @property
    def state(self) -> SchedulingState:
        return self.planning.config.state

    @property
    def index(self) -> JobIndex:
        return self.planning.index

    @property
    def ledger(self) -> UsageLedger:
        return self.planning.ledger

    def submit(self, new: Job) -> None:
        job = service_job(new)
        self.jobs[job.job_id] = job
        self.planning.add(job)

    def plan(self, now: int) -> Plan:
        return self.planning.plan(now)

    def tick(self, now: int) -> Plan:
        result = self.plan(now)
        self.apply(result, now)
        return result

    def apply(self, result: Plan, now: int) -> None:
        def new_attempt(job: ServiceJob, environment: str) -> CurrentAttempt:
            return _attempt(job.job_id, environment, now)

        for decision in result:
            job = self.jobs[decision.job_id]
            self._change(job, decisions.apply(job, decision, now, new_attempt)[0], now)

    def _change(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        self.jobs[new.job_id] = new
        self.planning.changed(old, new, now)
        if new.terminal:
            self.ended.append(new.job_id)

    def _report(
        self, job_id: str, phase: TrainingPhase, now: int, reason: str | None = None
    ) -> None:
        job = self.jobs[job_id]
        assert job.current is not None
        progress = Progress(job.current.training_job_name, phase, failure_reason=reason)
        self._change(job, outcomes.after_progress(job, progress, now), now)

    def start(self, job_id: str, now: int) -> None:
        """The job's training job began training."""
        self._report(job_id, TrainingPhase.TRAINING, now)

    def capacity_error(self, job_id: str, now: int) -> None:
        """SageMaker found no capacity: back to RUNNABLE without using an attempt."""
        self._report(job_id, TrainingPhase.FAILED, now, _CAPACITY_ERROR)

    def finish(self, job_id: str, now: int) -> None:
        """The job's training job completed: its capacity is released."""
        self._report(job_id, TrainingPhase.COMPLETED, now)

    def complete_stops(self, now: int) -> None:
        """Every stop in flight completes: preempted jobs queue again, timed-out ones end."""
        stopping = sorted(
            j for j, job in self.jobs.items() if job.current and job.current.stop_kind
        )
        for job_id in stopping:
            self._report(job_id, TrainingPhase.STOPPED, now)

    def held(self, environment: str = "env") -> Mapping[str, int]:
        return self.index.held_in_environment(environment)
