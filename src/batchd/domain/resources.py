"""Service environments, job queues, scheduling policies and quota shares.

Members whose values form a closed set are ``StrEnum``s: they equal their wire strings, so
the codec stores them as those strings and code comparing with string literals keeps working.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "BACKEND_TAG",
    "NUM_INSTANCES",
    "SAGEMAKER_TRAINING",
    "CapacityLimit",
    "FairsharePolicy",
    "IdleResourceAssignment",
    "InSharePreemption",
    "JobQueue",
    "JobStateTimeLimitAction",
    "PolicyKind",
    "QuotaShare",
    "QuotaShareCapacityLimit",
    "QuotaSharePolicy",
    "QuotaSharePreemptionConfiguration",
    "QuotaShareResourceSharingConfiguration",
    "ResourceState",
    "ResourceStatus",
    "SchedulingPolicy",
    "ServiceEnvironment",
    "ServiceEnvironmentOrder",
    "ServiceType",
    "ShareAttributes",
    "SharingStrategy",
    "TimeLimitActionState",
    "TimeLimitActionType",
    "is_instance_type",
]

NUM_INSTANCES = "NUM_INSTANCES"
# A service environment's tag naming the backend its jobs run on (default: the server's).
BACKEND_TAG = "batchd:backend"


class ServiceType(enum.StrEnum):
    """The kind of service environment, job queue and service job: batchd serves one."""

    SAGEMAKER_TRAINING = "SAGEMAKER_TRAINING"


SAGEMAKER_TRAINING = ServiceType.SAGEMAKER_TRAINING


class ResourceState(enum.StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class ResourceStatus(enum.StrEnum):
    CREATING = "CREATING"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    DELETED = "DELETED"
    VALID = "VALID"
    INVALID = "INVALID"


class PolicyKind(enum.StrEnum):
    """How a job queue orders its jobs: no scheduling policy, fair share or quota shares."""

    FIFO = "FIFO"
    FAIRSHARE = "FAIRSHARE"
    QUOTA = "QUOTA"


class IdleResourceAssignment(enum.StrEnum):
    FIFO = "FIFO"


class SharingStrategy(enum.StrEnum):
    RESERVE = "RESERVE"
    LEND = "LEND"
    LEND_AND_BORROW = "LEND_AND_BORROW"


class InSharePreemption(enum.StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class TimeLimitActionState(enum.StrEnum):
    RUNNABLE = "RUNNABLE"


class TimeLimitActionType(enum.StrEnum):
    # CANCEL is in the model (container job queues); SAGEMAKER_TRAINING queues refuse it.
    CANCEL = "CANCEL"
    TERMINATE = "TERMINATE"


def is_instance_type(unit: str) -> bool:
    # SageMaker instance types look like ml.<family>.<size>; that is all the rules AWS states.
    parts = unit.split(".")
    return len(parts) == 3 and parts[0] == "ml" and all(parts[1:])


@dataclass(frozen=True)
class CapacityLimit:
    max_capacity: int
    capacity_unit: str


@dataclass(frozen=True)
class ServiceEnvironment:
    service_environment_name: str
    service_environment_arn: str
    capacity_limits: tuple[CapacityLimit, ...]
    service_environment_type: ServiceType = ServiceType.SAGEMAKER_TRAINING
    state: ResourceState = ResourceState.ENABLED
    status: ResourceStatus = ResourceStatus.VALID
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def quota_managed(self) -> bool:
        return any(is_instance_type(c.capacity_unit) for c in self.capacity_limits)

    @property
    def usable(self) -> bool:
        return self.state == ResourceState.ENABLED and self.status == ResourceStatus.VALID


@dataclass(frozen=True)
class ServiceEnvironmentOrder:
    order: int
    service_environment: str  # always stored as the ARN


@dataclass(frozen=True)
class JobStateTimeLimitAction:
    reason: str
    state: TimeLimitActionState
    max_time_seconds: int
    action: TimeLimitActionType


@dataclass(frozen=True)
class JobQueue:
    job_queue_name: str
    job_queue_arn: str
    priority: int
    service_environment_order: tuple[ServiceEnvironmentOrder, ...]
    state: ResourceState = ResourceState.ENABLED
    status: ResourceStatus = ResourceStatus.VALID
    status_reason: str = "JobQueue Healthy"
    scheduling_policy_arn: str | None = None
    job_queue_type: ServiceType = ServiceType.SAGEMAKER_TRAINING
    compute_environment_order: tuple[str, ...] = ()
    job_state_time_limit_actions: tuple[JobStateTimeLimitAction, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def environment_arn(self) -> str | None:
        ordered = sorted(self.service_environment_order, key=lambda o: o.order)
        return ordered[0].service_environment if ordered else None


@dataclass(frozen=True)
class ShareAttributes:
    share_identifier: str
    weight_factor: float | None = None


@dataclass(frozen=True)
class FairsharePolicy:
    share_decay_seconds: int | None = None
    compute_reservation: int | None = None
    share_distribution: tuple[ShareAttributes, ...] = ()


@dataclass(frozen=True)
class QuotaSharePolicy:
    idle_resource_assignment_strategy: IdleResourceAssignment


@dataclass(frozen=True)
class SchedulingPolicy:
    name: str
    arn: str
    fairshare_policy: FairsharePolicy | None = None
    quota_share_policy: QuotaSharePolicy | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> PolicyKind:
        return PolicyKind.QUOTA if self.quota_share_policy is not None else PolicyKind.FAIRSHARE


@dataclass(frozen=True)
class QuotaShareCapacityLimit:
    max_capacity: int
    capacity_unit: str


@dataclass(frozen=True)
class QuotaShareResourceSharingConfiguration:
    strategy: SharingStrategy
    borrow_limit: int | None = None


@dataclass(frozen=True)
class QuotaSharePreemptionConfiguration:
    in_share_preemption: InSharePreemption


@dataclass(frozen=True)
class QuotaShare:
    quota_share_name: str
    quota_share_arn: str
    job_queue_arn: str
    capacity_limits: tuple[QuotaShareCapacityLimit, ...]
    resource_sharing_configuration: QuotaShareResourceSharingConfiguration
    preemption_configuration: QuotaSharePreemptionConfiguration
    state: ResourceState = ResourceState.ENABLED
    status: ResourceStatus = ResourceStatus.VALID
    tags: dict[str, str] = field(default_factory=dict)
