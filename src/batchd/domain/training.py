"""The SageMaker training jobs batchd creates, one per dispatch, as SageMaker reports them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LogEvent", "StatusTransition", "TrainingJob"]


@dataclass(frozen=True)
class StatusTransition:
    """One entry of SageMaker's SecondaryStatusTransitions (epoch ms; open while current)."""

    status: str
    start_time: int
    status_message: str
    end_time: int | None = None


@dataclass(frozen=True)
class TrainingJob:
    training_job_name: str
    training_job_arn: str
    job_id: str  # the service job that created it
    creation_time: int  # epoch ms, like every time batchd stores
    last_modified_time: int
    training_job_status: str = "InProgress"  # InProgress | Completed | Failed | Stopping | Stopped
    secondary_status: str = "Starting"
    training_start_time: int | None = None
    training_end_time: int | None = None
    failure_reason: str | None = None
    model_artifacts: str | None = None  # s3:// URI of model.tar.gz
    # Hosts of the cluster: one log stream each, from the start of the attempt.
    instance_count: int = 1
    secondary_status_transitions: tuple[StatusTransition, ...] = ()


@dataclass(frozen=True)
class LogEvent:
    """One line of a host's log stream and when the backend saw it written (epoch ms)."""

    timestamp: int
    message: str
