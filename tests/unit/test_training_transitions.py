"""DescribeTrainingJob's SecondaryStatusTransitions: each change of secondary status closes
the open entry and opens the next, with SageMaker's messages and the backend's times."""

from __future__ import annotations

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.training import StatusTransition, TrainingJob
from batchd.runtime import training


def _record() -> TrainingJob:
    start = StatusTransition("Starting", 1000, "Preparing the instances for training")
    return TrainingJob("t", "arn", "job", 1000, 1000, secondary_status_transitions=(start,))


def _seen(record: TrainingJob, phase: TrainingPhase, at: int, **extra: object) -> TrainingJob:
    return training.observed(record, Progress("t", phase, at_ms=at, **extra), at)  # type: ignore[arg-type]


def test_a_completed_job_tells_starting_training_uploading_completed_with_times() -> None:
    record = _seen(_record(), TrainingPhase.TRAINING, 2000)
    record = _seen(record, TrainingPhase.TRAINING, 2500)  # no change, no entry
    record = _seen(record, TrainingPhase.COMPLETED, 4000, uploading_at_ms=3000)
    assert [(t.status, t.start_time, t.end_time) for t in record.secondary_status_transitions] == [
        ("Starting", 1000, 2000),
        ("Training", 2000, 3000),
        ("Uploading", 3000, 4000),
        ("Completed", 4000, 4000),
    ]


def test_a_failed_job_s_last_transition_carries_the_failure_reason() -> None:
    record = _seen(_record(), TrainingPhase.FAILED, 2000, failure_reason="AlgorithmError: boom")
    last = record.secondary_status_transitions[-1]
    assert (last.status, last.status_message) == (
        "Failed",
        "Training job failed. Reason: AlgorithmError: boom",
    )


def test_a_stop_request_shows_stopping_then_stopped() -> None:
    record = training.stopping(_record(), 1500)
    record = _seen(record, TrainingPhase.STOPPED, 1700, stopped_by_request=True)
    assert [t.status for t in record.secondary_status_transitions] == [
        "Starting",
        "Stopping",
        "Stopped",
    ]
