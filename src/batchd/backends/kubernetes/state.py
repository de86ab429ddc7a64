"""What the kubernetes backend remembers of one attempt between polls."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.client.rest import ApiException

from batchd import jsontext
from batchd.backends.base import LaunchSpec, Progress, TrainingPhase
from batchd.backends.kubernetes.observe import HostState
from batchd.backends.local.payload import TrainingRequest

__all__ = [
    "CAPACITY",
    "PHASES",
    "AttemptState",
    "api_message",
]

CAPACITY = "CapacityError: Unable to provision requested ML compute capacity. "
PHASES = {
    HostState.WAITING: TrainingPhase.PENDING,
    HostState.DOWNLOADING: TrainingPhase.DOWNLOADING,
    HostState.TRAINING: TrainingPhase.TRAINING,
    HostState.UPLOADING: TrainingPhase.TRAINING,
    HostState.DONE: TrainingPhase.TRAINING,
}


@dataclass
class AttemptState:
    spec: LaunchSpec
    request: TrainingRequest
    created: float  # monotonic seconds
    # Decided; reported once the attempt's Jobs and pods are gone (every end deletes them all).
    ending: Progress | None = None
    deleted_at: float | None = None
    final: Progress | None = None
    unschedulable_since: float | None = None
    entered: dict[TrainingPhase, int] = field(default_factory=dict)
    phase: TrainingPhase = TrainingPhase.PENDING
    uploading_at: int | None = None
    status_message: str | None = None  # the scheduler's, while a pod cannot be placed

    @property
    def name(self) -> str:
        return self.spec.training_job_name


def api_message(err: ApiException) -> str:
    try:
        return str(jsontext.loads(err.body or b"{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)
