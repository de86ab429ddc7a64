"""SageMaker's view of each training job batchd creates: pure updates of ``TrainingJob``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from batchd.backends.base import Progress, TrainingPhase
from batchd.domain.jobs import ServiceJob
from batchd.domain.training import TrainingJob

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


def created(job: ServiceJob, now: int) -> TrainingJob:
    assert job.current is not None
    return TrainingJob(
        training_job_name=job.current.training_job_name,
        training_job_arn=job.current.training_job_arn,
        job_id=job.job_id,
        creation_time=now,
        last_modified_time=now,
        instance_count=instance_count(job.payload),
    )


def instance_count(payload: Mapping[str, Any]) -> int:
    """Hosts of the cluster, as the SDK counts them for its log streams."""
    config = payload.get("ResourceConfig") or {}
    groups = config.get("InstanceGroups") or []
    counted = sum(int(g.get("InstanceCount") or 0) for g in groups if isinstance(g, Mapping))
    return max(1, counted or int(config.get("InstanceCount") or 1))


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
    )


def stopping(record: TrainingJob, now: int) -> TrainingJob:
    if record.training_job_status != "InProgress":
        return record
    return dataclasses.replace(
        record, training_job_status="Stopping", secondary_status="Stopping", last_modified_time=now
    )


def launch_failed(record: TrainingJob, code: str, message: str, now: int) -> TrainingJob:
    return dataclasses.replace(
        record,
        training_job_status="Failed",
        secondary_status="Failed",
        failure_reason=f"{code}: {message}",
        last_modified_time=now,
        training_end_time=now,
    )
