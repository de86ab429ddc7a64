"""SageMaker's view of each training job batchd creates: pure updates of ``TrainingJob``.

Every change of secondary status closes the current ``SecondaryStatusTransitions`` entry and
opens the next, with SageMaker's messages: the SDK prints them while it tails the logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.jobs import ServiceJob
from batchd.domain.training import StatusTransition, TrainingJob

__all__ = ["created", "instance_count", "launch_failed", "observed", "stopping"]

_STATUS = {
    TrainingPhase.PENDING: ("InProgress", "Starting"),
    TrainingPhase.DOWNLOADING: ("InProgress", "Downloading"),
    TrainingPhase.TRAINING: ("InProgress", "Training"),
    TrainingPhase.COMPLETED: ("Completed", "Completed"),
    TrainingPhase.FAILED: ("Failed", "Failed"),
    TrainingPhase.STOPPED: ("Stopped", "Stopped"),
    TrainingPhase.LOST: ("Failed", "Failed"),
}

# SageMaker's own StatusMessage texts.
_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped because it exceeded MaxRuntimeInSeconds",
}
_FINAL = frozenset({"Completed", "Failed", "Stopped", "MaxRuntimeExceeded"})


def created(job: ServiceJob, now: int) -> TrainingJob:
    assert job.current is not None
    return TrainingJob(
        training_job_name=job.current.training_job_name,
        training_job_arn=job.current.training_job_arn,
        job_id=job.job_id,
        creation_time=now,
        last_modified_time=now,
        instance_count=instance_count(job.payload),
        secondary_status_transitions=(StatusTransition("Starting", now, _MESSAGES["Starting"]),),
    )


def instance_count(payload: Mapping[str, Any]) -> int:
    """Hosts of the cluster, as the SDK counts them for its log streams."""
    config = payload.get("ResourceConfig") or {}
    groups = config.get("InstanceGroups") or []
    counted = sum(int(g.get("InstanceCount") or 0) for g in groups if isinstance(g, Mapping))
    return max(1, counted or int(config.get("InstanceCount") or 1))


def _moved(
    transitions: tuple[StatusTransition, ...], status: str, at: int, message: str | None = None
) -> tuple[StatusTransition, ...]:
    """The transitions with ``status`` entered at ``at`` (the open entry closed there)."""
    if transitions and transitions[-1].status == status:
        return transitions
    closed = tuple(
        each if each.end_time is not None else dataclasses.replace(each, end_time=max(at, 0))
        for each in transitions
    )
    entry = StatusTransition(status, at, message or _MESSAGES[status])
    if status in _FINAL:
        entry = dataclasses.replace(entry, end_time=at)
    return (*closed, entry)


def observed(record: TrainingJob, progress: Progress, now: int) -> TrainingJob:
    status, secondary = _STATUS[progress.phase]
    if progress.phase is TrainingPhase.STOPPED and (progress.failure_reason or "").startswith(
        "MaxRuntimeExceeded"
    ):
        secondary = "MaxRuntimeExceeded"
    if (status, secondary) == (record.training_job_status, record.secondary_status) and (
        progress.model_artifacts in (None, record.model_artifacts)
    ):
        return record
    at = progress.at_ms or now
    transitions = record.secondary_status_transitions
    if progress.phase.terminal and progress.uploading_at_ms is not None:
        transitions = _moved(transitions, "Uploading", progress.uploading_at_ms)
    message = None
    if secondary == "Failed" and progress.failure_reason:
        message = f"Training job failed. Reason: {progress.failure_reason}"
    transitions = _moved(transitions, secondary, at, message)
    return dataclasses.replace(
        record,
        training_job_status=status,
        secondary_status=secondary,
        last_modified_time=at,
        training_start_time=record.training_start_time
        or (at if progress.phase is TrainingPhase.TRAINING else None),
        training_end_time=at if progress.phase.terminal else None,
        failure_reason=progress.failure_reason if status in ("Failed", "Stopped") else None,
        model_artifacts=progress.model_artifacts or record.model_artifacts,
        secondary_status_transitions=transitions,
    )


def stopping(record: TrainingJob, now: int) -> TrainingJob:
    if record.training_job_status != "InProgress":
        return record
    return dataclasses.replace(
        record,
        training_job_status="Stopping",
        secondary_status="Stopping",
        last_modified_time=now,
        secondary_status_transitions=_moved(record.secondary_status_transitions, "Stopping", now),
    )


def launch_failed(record: TrainingJob, code: str, message: str, now: int) -> TrainingJob:
    reason = f"{code}: {message}"
    return dataclasses.replace(
        record,
        training_job_status="Failed",
        secondary_status="Failed",
        failure_reason=reason,
        last_modified_time=now,
        training_end_time=now,
        secondary_status_transitions=_moved(
            record.secondary_status_transitions,
            "Failed",
            now,
            f"Training job failed. Reason: {reason}",
        ),
    )
