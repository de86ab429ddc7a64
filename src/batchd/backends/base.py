"""The one protocol every execution backend speaks.

A backend runs SageMaker training jobs on behalf of the runtime. The runtime owns the Batch
state machine; a backend only knows training jobs: it starts one per dispatched attempt,
reports how each is doing, and stops one on request. Progress is pulled by ``poll`` (the
runtime calls it every tick with the training jobs it believes are live); a backend that
learns something between polls calls the ``wake`` callback it was built with so the runtime
ticks early instead of waiting for its next period.

A backend also keeps each training job's output: one log stream per host (``algo-1`` ...),
read by byte offset so a client can follow it. On SageMaker that is CloudWatch Logs, one
stream per host of a training job; locally, one file per host.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from batchd.domain.training import LogEvent

__all__ = [
    "Adopting",
    "Backend",
    "LaunchError",
    "LaunchSpec",
    "LogEvent",
    "Progress",
    "Scheduled",
    "Steady",
    "TimedLogs",
    "TrainingPhase",
    "Wake",
]

Wake = Callable[[], None]


class TrainingPhase(enum.Enum):
    """Where a training job is, in SageMaker's terms mapped onto Batch statuses.

    PENDING -> SCHEDULED, DOWNLOADING -> STARTING, TRAINING -> RUNNING; the three terminal
    phases end the attempt. LOST means the backend has no record of the job (for example the
    server restarted and the process is gone): the runtime treats it as a failed attempt.
    """

    PENDING = "Pending"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    LOST = "Lost"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {TrainingPhase.COMPLETED, TrainingPhase.FAILED, TrainingPhase.STOPPED, TrainingPhase.LOST}
)


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a backend needs to start one attempt of a service job."""

    job_id: str
    job_arn: str
    attempt_id: str  # 32 lowercase hex; unique per dispatch
    training_job_name: str  # "AWSBatch" + name + attempt_id, SageMaker-valid
    training_job_arn: str
    payload: Mapping[str, Any]  # the parsed CreateTrainingJob request
    tags: Mapping[str, str]
    region: str
    account_id: str
    # The job's queue, and its attemptDurationSeconds: for a backend that labels what it runs
    # by queue or enforces the timeout itself as well (Kubernetes' activeDeadlineSeconds).
    queue: str | None = None
    attempt_duration_seconds: int | None = None


@dataclass(frozen=True)
class Progress:
    """One observation of a training job, as ``DescribeTrainingJob`` would report it."""

    training_job_name: str
    phase: TrainingPhase
    # Set with FAILED/STOPPED/LOST: SageMaker's FailureReason text ("AlgorithmError: ...",
    # "CapacityError: ...", "MaxRuntimeExceeded" ...), without Batch's prefix.
    failure_reason: str | None = None
    # Epoch milliseconds when the phase was entered, as observed by the backend.
    at_ms: int | None = None
    # s3:// URI of model.tar.gz, once uploaded.
    model_artifacts: str | None = None
    # True when the job ended because stop() asked it to.
    stopped_by_request: bool = False
    # Epoch ms when the hosts were done and the upload of the model and output began, for a
    # backend that knows (SageMaker's "Uploading" secondary status).
    uploading_at_ms: int | None = None
    # Why a job that has not started yet is waiting, in the backend's words (a Kubernetes pod
    # the scheduler cannot place): shown as the job's statusReason while it is SCHEDULED.
    status_message: str | None = None


class LaunchError(Exception):
    """CreateTrainingJob failed synchronously (SageMaker's ValidationException and kin).

    ``code`` is the SageMaker error code; the runtime reports the attempt as
    ``Received status from SageMaker: <code>: <message>``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Backend(Protocol):
    """What the runtime calls. Implementations must be safe to call from one event loop."""

    name: str

    async def start(self, spec: LaunchSpec) -> None:
        """Begin the training job; return once it is accepted (not when it finishes).

        Raise LaunchError for a request SageMaker would reject synchronously.
        """

    async def poll(self, training_job_names: Sequence[str]) -> Sequence[Progress]:
        """Report the current phase of each named job. Unknown names come back LOST."""

    async def stop(self, training_job_name: str) -> None:
        """Ask the job to stop (SIGTERM, then SIGKILL after a grace period). Idempotent.

        The job reports STOPPED (stopped_by_request=True) through poll once it is gone.
        """

    async def log_hosts(self, training_job_name: str) -> Sequence[str]:
        """The hosts of the job that have a log stream, ``algo-1`` first.

        Empty when this backend has no output for the job: it never ran it, or no host has
        written anything yet. Training jobs of earlier server runs count too.
        """

    async def read_log(self, training_job_name: str, host: str, offset: int, limit: int) -> bytes:
        """At most ``limit`` bytes of ``host``'s stream from byte ``offset``.

        Empty at the end of the stream, and for a job or host this backend has no output for.
        """

    async def close(self) -> None:
        """Release resources at server shutdown. Running jobs are left to restart recovery."""


@runtime_checkable
class Scheduled(Protocol):
    """A backend that knows when its training jobs end by themselves (the fake one), so a
    virtual clock can jump to that time instead of ticking through the wait."""

    def next_due(self, after: int) -> int | None:
        """The earliest time (epoch ms) later than ``after`` at which a job moves on."""


@runtime_checkable
class Steady(Protocol):
    """A backend that knows how long a training job stays in TRAINING (the fake one), so the
    runtime need not poll it meanwhile: with dozens running, polling each at every cycle cost
    as much as the rest of the cycle."""

    def steady_until(self, training_job_name: str) -> int | None:
        """For a training job this backend last reported TRAINING: the time (epoch ms) before
        which every poll would report TRAINING again and nothing new, unless ``stop`` is asked
        for it; None when it cannot promise that."""


@runtime_checkable
class Adopting(Protocol):
    """A backend whose training jobs outlive the process that started them (the fake one;
    Kubernetes), so a new leader takes them over instead of reporting them lost."""

    async def adopt(self, spec: LaunchSpec, scheduled_at: int, started_at: int | None) -> None:
        """Go on reporting on the training job ``spec`` names as if this process started it."""


@runtime_checkable
class TimedLogs(Protocol):
    """A backend that also keeps when each line was written: its streams read as CloudWatch
    events. A backend without it is read by bytes, one event per line, with no time of its own.
    """

    async def read_events(
        self, training_job_name: str, host: str, start: int, limit: int
    ) -> tuple[Sequence[LogEvent], int]:
        """Events ``start .. start+limit`` of ``host``'s stream, in the order they were
        written, and how many the stream has now. ``([], 0)`` for an unknown job or host.
        """
