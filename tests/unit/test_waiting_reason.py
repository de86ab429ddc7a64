"""A backend's word on why a dispatched job has not started (a pod the cluster's scheduler
cannot place) is the job's statusReason while it is SCHEDULED, and goes when it starts."""

from __future__ import annotations

import dataclasses

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.jobs import ServiceJob, StopKind
from batchd.domain.status import JobStatus
from batchd.runtime.outcomes import after_progress
from tests.unit.scheduling.builders import job, service_job

MESSAGE = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."


def _scheduled() -> tuple[ServiceJob, str]:
    made = service_job(job("j1", status="SCHEDULED", environment="env", scheduled_at=5))
    assert made.current is not None
    return made, made.current.training_job_name


def test_the_message_shows_while_scheduled_and_goes_when_it_starts() -> None:
    made, name = _scheduled()
    waiting = after_progress(made, Progress(name, TrainingPhase.PENDING, status_message=MESSAGE), 6)
    assert (waiting.status, waiting.status_reason) == (JobStatus.SCHEDULED, MESSAGE)
    same = after_progress(waiting, Progress(name, TrainingPhase.PENDING, status_message=MESSAGE), 7)
    assert same is waiting  # nothing to commit
    placed = after_progress(waiting, Progress(name, TrainingPhase.PENDING), 8)
    assert placed.status_reason is None
    started = after_progress(waiting, Progress(name, TrainingPhase.DOWNLOADING), 9)
    assert (started.status, started.status_reason) == (JobStatus.STARTING, None)


def test_a_reason_batchd_gave_a_job_it_is_stopping_stays() -> None:
    made, name = _scheduled()
    assert made.current is not None
    stopping = dataclasses.replace(
        made,
        status_reason="Terminated by user",
        current=dataclasses.replace(made.current, stop_kind=StopKind.TERMINATE),
    )
    seen = after_progress(
        stopping, Progress(name, TrainingPhase.PENDING, status_message=MESSAGE), 6
    )
    assert seen.status_reason == "Terminated by user"
