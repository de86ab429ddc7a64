"""What one planner decision does to one job: pure functions of (job, decision, now).

The planner decides over its own small views of jobs; this is where each typed decision
becomes the job's next state, and the backend action (if any) that follows it once the new
state is committed. A decision that no longer fits the job (it changed since the planner
looked: terminated, already stopping) changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from batchd.domain.jobs import (
    CurrentAttempt,
    LatestServiceJobAttempt,
    ServiceJob,
    ServiceResourceId,
    StopKind,
)
from batchd.domain.status import JobStatus
from batchd.runtime import outcomes
from batchd.scheduling.plan import (
    AttemptTimeout,
    Block,
    Decision,
    Dispatch,
    Preempt,
    TimeLimitTerminate,
    Unblock,
)

__all__ = ["Action", "NewAttempt", "Start", "Stop", "apply", "dispatched"]


@dataclass(frozen=True, slots=True)
class Start:
    """Start the job's current training job on its backend."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Ask the backend to stop the job's current training job."""

    job_id: str


Action = Start | Stop
# The attempt a dispatch creates for (job, environment): ids and ARNs come from the caller.
NewAttempt = Callable[[ServiceJob, str], CurrentAttempt]


def apply(
    job: ServiceJob, decision: Decision, now: int, new_attempt: NewAttempt
) -> tuple[ServiceJob, Action | None]:
    """The job after ``decision``, and what to ask of its backend after the commit."""
    runnable = job.status is JobStatus.RUNNABLE
    current = job.current
    idle = current is not None and current.stop_kind is None
    match decision:
        case Dispatch(environment=environment) if runnable:
            return dispatched(job, new_attempt(job, environment), now), Start(job.job_id)
        case Block(code=code, reason=reason) if runnable:
            since = job.blocked_since if job.blocked_code == code else now
            return job.replaced(status_reason=reason, blocked_since=since), None
        case Unblock() if runnable:
            return job.replaced(status_reason=None, blocked_since=None), None
        case TimeLimitTerminate(reason=reason) if runnable:
            return outcomes.terminated_queued(job, reason, now), None
        case Preempt(reason=reason) if idle:
            # The job shows PREEMPTION_IN_PROGRESS until the attempt stops; the attempt then
            # records the same kind of preemption without the prefix.
            stopping = _stopping(job, StopKind.PREEMPT, decision.attempt_reason)
            return dataclasses.replace(stopping, status_reason=reason), Stop(job.job_id)
        case AttemptTimeout(reason=reason) if idle:
            return _stopping(job, StopKind.TIMEOUT, reason), Stop(job.job_id)
    return job, None


def _stopping(job: ServiceJob, kind: StopKind, reason: str) -> ServiceJob:
    assert job.current is not None
    current = dataclasses.replace(job.current, stop_kind=kind, stop_reason=reason)
    return dataclasses.replace(job, current=current)


def dispatched(job: ServiceJob, attempt: CurrentAttempt, now: int) -> ServiceJob:
    """A RUNNABLE job becomes SCHEDULED with ``attempt`` as its training job."""
    return job.replaced(
        status=job.status.checked(JobStatus.SCHEDULED),
        status_reason=None,
        scheduled_at=now,
        started_at=None,
        # Time in failed capacity attempts accumulates toward a CAPACITY time limit (§5.4).
        blocked_since=job.blocked_since if job.capacity_failed else None,
        latest_attempt=LatestServiceJobAttempt(ServiceResourceId(attempt.training_job_arn)),
        current=attempt,
    )
