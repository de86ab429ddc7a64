"""The service job and its attempts."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, fields
from typing import Any

from batchd import jsontext
from batchd.domain.resources import ServiceType
from batchd.domain.status import DISPATCHED, TERMINAL, JobStatus

__all__ = [
    "TRAINING_JOB_ARN",
    "CapacityUsage",
    "CurrentAttempt",
    "LatestServiceJobAttempt",
    "RetryAction",
    "ServiceJob",
    "ServiceJobAttemptDetail",
    "ServiceJobEvaluateOnExit",
    "ServiceJobPreemptedAttempt",
    "ServiceJobPreemptionConfiguration",
    "ServiceJobPreemptionSummary",
    "ServiceJobRetryStrategy",
    "ServiceJobTimeout",
    "ServiceResourceId",
    "ServiceResourceIdName",
    "StopKind",
]


class ServiceResourceIdName(enum.StrEnum):
    TRAINING_JOB_ARN = "TrainingJobArn"


TRAINING_JOB_ARN = ServiceResourceIdName.TRAINING_JOB_ARN


class RetryAction(enum.StrEnum):
    """``evaluateOnExit`` actions. Clients may send them in any case (``"Retry"``) and get them
    back as sent, so the member stays a string; compare its upper case with these."""

    RETRY = "RETRY"
    EXIT = "EXIT"


@dataclass(frozen=True)
class ServiceResourceId:
    value: str
    name: ServiceResourceIdName = ServiceResourceIdName.TRAINING_JOB_ARN


@dataclass(frozen=True)
class ServiceJobAttemptDetail:
    service_resource_id: ServiceResourceId
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None


@dataclass(frozen=True)
class ServiceJobPreemptedAttempt:
    service_resource_id: ServiceResourceId
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None


@dataclass(frozen=True)
class ServiceJobPreemptionSummary:
    preempted_attempt_count: int = 0
    recent_preempted_attempts: tuple[ServiceJobPreemptedAttempt, ...] = ()


@dataclass(frozen=True)
class LatestServiceJobAttempt:
    service_resource_id: ServiceResourceId


@dataclass(frozen=True)
class CapacityUsage:
    capacity_unit: str
    quantity: float


@dataclass(frozen=True)
class ServiceJobEvaluateOnExit:
    action: str | None = None
    on_status_reason: str | None = None


@dataclass(frozen=True)
class ServiceJobRetryStrategy:
    attempts: int
    evaluate_on_exit: tuple[ServiceJobEvaluateOnExit, ...] = ()


@dataclass(frozen=True)
class ServiceJobPreemptionConfiguration:
    preemption_retries_before_termination: int | None = None


@dataclass(frozen=True)
class ServiceJobTimeout:
    attempt_duration_seconds: int | None = None


class StopKind(enum.StrEnum):
    """Why batchd asked a backend to stop a training job: its outcome is attributed to it."""

    TERMINATE = "terminate"
    TIMEOUT = "timeout"
    PREEMPT = "preempt"


@dataclass(frozen=True)
class CurrentAttempt:
    """The training job of the dispatch in flight (not a wire shape; runtime bookkeeping).

    ``stop_kind`` records why batchd asked the backend to stop it, so the outcome is
    attributed correctly when the backend reports STOPPED; ``stop_reason`` is the text the
    stopped attempt then records (for a preemption, which kind of preemption it was).
    """

    attempt_id: str
    training_job_name: str
    training_job_arn: str
    environment: str
    backend: str
    scheduled_at: int
    started_at: int | None = None
    stop_kind: StopKind | None = None
    stop_reason: str | None = None


@dataclass(frozen=True)
class ServiceJob:
    job_id: str
    job_arn: str
    job_name: str
    job_queue: str  # the queue ARN
    service_request_payload: str
    created_at: int
    seq: int = 0
    status: JobStatus = JobStatus.SUBMITTED
    status_reason: str | None = None
    service_job_type: ServiceType = ServiceType.SAGEMAKER_TRAINING
    scheduled_at: int | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    is_terminated: bool = False
    attempts: tuple[ServiceJobAttemptDetail, ...] = ()
    latest_attempt: LatestServiceJobAttempt | None = None
    capacity_usage: tuple[CapacityUsage, ...] = ()
    retry_strategy: ServiceJobRetryStrategy | None = None
    scheduling_priority: int | None = None
    share_identifier: str | None = None
    quota_share_name: str | None = None
    preemption_configuration: ServiceJobPreemptionConfiguration | None = None
    preemption_summary: ServiceJobPreemptionSummary | None = None
    timeout_config: ServiceJobTimeout | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Runtime bookkeeping, never serialized to clients (not members of the model's shapes).
    client_token: str | None = None
    request_digest: str | None = None
    blocked_since: int | None = None
    capacity_failed: bool = False
    current: CurrentAttempt | None = None

    def with_status(self, status: JobStatus) -> ServiceJob:
        """This job with another status and nothing else changed.

        ``dataclasses.replace`` runs ``__init__`` over every field; admission does this once
        per submitted job, where it was the largest cost of a scheduling cycle.
        """
        changed = object.__new__(ServiceJob)
        changed.__dict__.update(self.__dict__)
        changed.__dict__["status"] = status
        return changed

    def replaced(self, **changes: Any) -> ServiceJob:
        """``dataclasses.replace`` for the runtime's hot paths, a sixth of its cost: the same
        fields without ``__init__`` over all of them, and the parsed payload kept when the
        payload is not among the changes."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"ServiceJob has no fields {sorted(unknown)}")
        changed = object.__new__(ServiceJob)
        changed.__dict__.update(self.__dict__)
        changed.__dict__.update(changes)
        if "service_request_payload" in changes:
            changed.__dict__.pop("payload", None)
        return changed

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @functools.cached_property
    def payload(self) -> dict[str, Any]:
        """The CreateTrainingJob request, parsed once per job; {} when it is not an object.

        Submit refuses a payload that is not a JSON object, so {} only stands for a stored
        job that was never valid: the backend then rejects it as SageMaker would.
        """
        try:
            parsed = jsontext.loads(self.service_request_payload)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def dispatched(self) -> bool:
        return self.status in DISPATCHED

    @property
    def queue_name(self) -> str:
        return self.job_queue.rsplit("/", 1)[-1]

    @property
    def demand(self) -> dict[str, int]:
        return {c.capacity_unit: int(c.quantity) for c in self.capacity_usage}

    @property
    def blocked_code(self) -> str | None:
        if self.status is not JobStatus.RUNNABLE or not self.status_reason:
            return None
        code = self.status_reason.split(" - ", 1)[0]
        return code if code.startswith(("CAPACITY:", "MISCONFIGURATION:")) else None


_FIELDS = frozenset(f.name for f in fields(ServiceJob))
