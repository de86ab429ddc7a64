"""How a job changes when its training job moves: pure functions of (job, progress, now).

Every status reason here is one the spec documents (§4.3, §5, §9.3), so ``evaluateOnExit``
patterns written for AWS match batchd's.
"""

from __future__ import annotations

import dataclasses

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.jobs import (
    ServiceJob,
    ServiceJobAttemptDetail,
    ServiceJobPreemptedAttempt,
    ServiceJobPreemptionSummary,
    ServiceResourceId,
    StopKind,
)
from batchd.domain.retry import should_retry
from batchd.domain.status import JobStatus
from batchd.scheduling.reasons import CROSS_SHARE_PREEMPTION, PREEMPTION_PREFIX

__all__ = [
    "COMPLETED",
    "LOST",
    "PREEMPTED",
    "SAGEMAKER",
    "STOPPED",
    "TIMEOUT",
    "after_progress",
    "failed_to_launch",
    "terminated_queued",
]

SAGEMAKER = "Received status from SageMaker: "
COMPLETED = SAGEMAKER + "Training job completed"
STOPPED = SAGEMAKER + "Training job stopped"
TIMEOUT = "Job attempt duration exceeded timeout"
LOST = "was lost; the batchd server restarted while it ran"
PREEMPTED = CROSS_SHARE_PREEMPTION.removeprefix(PREEMPTION_PREFIX)
CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Unable to provision requested compute resources"
)
_RECENT_PREEMPTIONS = 5

_PHASE_STATUS = {
    TrainingPhase.PENDING: JobStatus.SCHEDULED,
    TrainingPhase.DOWNLOADING: JobStatus.STARTING,
    TrainingPhase.TRAINING: JobStatus.RUNNING,
}


def after_progress(job: ServiceJob, progress: Progress, now: int) -> ServiceJob:
    """The job after one observation of its current training job."""
    current = job.current
    if current is None or progress.training_job_name != current.training_job_name:
        return job
    if not progress.phase.terminal:
        return _waiting_reason(job, _moving(job, _PHASE_STATUS[progress.phase], now), progress)
    if progress.phase is TrainingPhase.COMPLETED:
        return _finished(job, JobStatus.SUCCEEDED, COMPLETED, COMPLETED, now)
    return _ended_badly(job, progress, now)


def _moving(job: ServiceJob, status: JobStatus, now: int) -> ServiceJob:
    assert job.current is not None
    if status is job.status or not job.status.can_become(status):
        return job
    if status is JobStatus.RUNNING and job.current.started_at is None:
        current = dataclasses.replace(job.current, started_at=now)
        return job.replaced(status=status, started_at=now, current=current)
    return job.replaced(status=status)


def _waiting_reason(old: ServiceJob, new: ServiceJob, progress: Progress) -> ServiceJob:
    """A SCHEDULED job shows why its backend cannot start it yet, and drops that reason when
    it starts; a reason batchd set while stopping the job stays."""
    if new.current is None or new.current.stop_kind is not None:
        return new
    if new.status is JobStatus.SCHEDULED:
        reason = progress.status_message
    elif old.status is JobStatus.SCHEDULED:
        reason = None
    else:
        return new
    return new if reason == new.status_reason else dataclasses.replace(new, status_reason=reason)


def _attempt(job: ServiceJob, reason: str, now: int) -> ServiceJobAttemptDetail:
    assert job.current is not None
    return ServiceJobAttemptDetail(
        service_resource_id=ServiceResourceId(job.current.training_job_arn),
        started_at=job.current.started_at,
        stopped_at=now,
        status_reason=reason,
    )


def _finished(
    job: ServiceJob,
    status: JobStatus,
    job_reason: str,
    attempt_reason: str,
    now: int,
    terminated: bool = False,
) -> ServiceJob:
    return job.replaced(
        status=job.status.checked(status),
        status_reason=job_reason,
        stopped_at=now,
        attempts=(*job.attempts, _attempt(job, attempt_reason, now)),
        is_terminated=terminated or job.is_terminated,
        current=None,
    )


def _ended_badly(job: ServiceJob, progress: Progress, now: int) -> ServiceJob:
    assert job.current is not None
    # A stop batchd asked for is attributed to its cause, however the training job ended.
    match job.current.stop_kind:
        case StopKind.TERMINATE:
            reason = job.current.stop_reason or "Terminated"
            return _finished(job, JobStatus.FAILED, reason, STOPPED, now, terminated=True)
        case StopKind.TIMEOUT:
            return _finished(job, JobStatus.FAILED, TIMEOUT, STOPPED, now, terminated=True)
        case StopKind.PREEMPT:
            return _preempted(job, now)
    reason = SAGEMAKER + (progress.failure_reason or _default_reason(progress))
    if (progress.failure_reason or "").startswith("CapacityError"):
        return _capacity_failed(job)
    return _failed_attempt(job, reason, now)


def _default_reason(progress: Progress) -> str:
    if progress.phase is TrainingPhase.LOST:
        return f"InternalServerError: training job {progress.training_job_name} {LOST}"
    if progress.phase is TrainingPhase.STOPPED:
        return "Training job stopped"
    return "AlgorithmError: the training job failed without a reason"


def _failed_attempt(job: ServiceJob, reason: str, now: int) -> ServiceJob:
    """A counted attempt failed: retry per the strategy, or fail the job."""
    attempts = (*job.attempts, _attempt(job, reason, now))
    if should_retry(job.retry_strategy, len(attempts), reason):
        return dataclasses.replace(_requeued(job, status_reason=None), attempts=attempts)
    return dataclasses.replace(
        job,
        status=job.status.checked(JobStatus.FAILED),
        status_reason=reason,
        stopped_at=now,
        attempts=attempts,
        current=None,
    )


def _requeued(job: ServiceJob, status_reason: str | None) -> ServiceJob:
    return dataclasses.replace(
        job,
        status=job.status.checked(JobStatus.RUNNABLE),
        status_reason=status_reason,
        capacity_failed=False,
        blocked_since=None,
        current=None,
    )


def _capacity_failed(job: ServiceJob) -> ServiceJob:
    """Back to RUNNABLE, no attempt used; the blocked clock runs from the first such failure."""
    assert job.current is not None
    since = job.blocked_since if job.capacity_failed and job.blocked_since else None
    return dataclasses.replace(
        _requeued(job, CAPACITY),
        capacity_failed=True,
        blocked_since=since or job.current.scheduled_at,
    )


def _preempted(job: ServiceJob, now: int) -> ServiceJob:
    """The attempt records the kind of preemption the planner chose (``stop_reason``)."""
    assert job.current is not None
    reason = job.current.stop_reason or PREEMPTED
    summary = job.preemption_summary or ServiceJobPreemptionSummary()
    record = ServiceJobPreemptedAttempt(
        service_resource_id=ServiceResourceId(job.current.training_job_arn),
        started_at=job.current.started_at,
        stopped_at=now,
        status_reason=reason,
    )
    recent = (*summary.recent_preempted_attempts, record)[-_RECENT_PREEMPTIONS:]
    summary = ServiceJobPreemptionSummary(summary.preempted_attempt_count + 1, recent)
    limit = (
        job.preemption_configuration.preemption_retries_before_termination
        if job.preemption_configuration
        else None
    )
    if limit is not None and summary.preempted_attempt_count > limit:
        return dataclasses.replace(
            job,
            status=job.status.checked(JobStatus.FAILED),
            status_reason=f"{reason}; preemptionRetriesBeforeTermination ({limit}) exhausted",
            stopped_at=now,
            is_terminated=True,
            preemption_summary=summary,
            current=None,
        )
    return dataclasses.replace(_requeued(job, None), preemption_summary=summary)


def failed_to_launch(job: ServiceJob, code: str, message: str, now: int) -> ServiceJob:
    """CreateTrainingJob was refused: a counted attempt that never ran."""
    reason = f"{SAGEMAKER}{code}: {message}"
    if code == "CapacityError":
        return _capacity_failed(job)
    return _failed_attempt(job, reason, now)


def terminated_queued(job: ServiceJob, reason: str, now: int) -> ServiceJob:
    """A job that never reached a training job ends at once (spec §5.3)."""
    return dataclasses.replace(
        job,
        status=job.status.checked(JobStatus.FAILED),
        status_reason=reason,
        stopped_at=now,
        is_terminated=True,
        blocked_since=None,
    )
