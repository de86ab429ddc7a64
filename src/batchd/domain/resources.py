"""Service environments, job queues, scheduling policies and quota shares."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BACKEND_TAG",
    "NUM_INSTANCES",
    "CapacityLimit",
    "FairsharePolicy",
    "JobQueue",
    "JobStateTimeLimitAction",
    "QuotaShare",
    "QuotaShareCapacityLimit",
    "QuotaSharePolicy",
    "QuotaSharePreemptionConfiguration",
    "QuotaShareResourceSharingConfiguration",
    "SchedulingPolicy",
    "ServiceEnvironment",
    "ServiceEnvironmentOrder",
    "ShareAttributes",
    "is_instance_type",
]

NUM_INSTANCES = "NUM_INSTANCES"
# A service environment's tag naming the backend its jobs run on (default: the server's).
BACKEND_TAG = "batchd:backend"
SAGEMAKER_TRAINING = "SAGEMAKER_TRAINING"


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
    service_environment_type: str = SAGEMAKER_TRAINING
    state: str = "ENABLED"
    status: str = "VALID"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def quota_managed(self) -> bool:
        return any(is_instance_type(c.capacity_unit) for c in self.capacity_limits)

    @property
    def usable(self) -> bool:
        return self.state == "ENABLED" and self.status == "VALID"


@dataclass(frozen=True)
class ServiceEnvironmentOrder:
    order: int
    service_environment: str  # always stored as the ARN


@dataclass(frozen=True)
class JobStateTimeLimitAction:
    reason: str
    state: str
    max_time_seconds: int
    action: str


@dataclass(frozen=True)
class JobQueue:
    job_queue_name: str
    job_queue_arn: str
    priority: int
    service_environment_order: tuple[ServiceEnvironmentOrder, ...]
    state: str = "ENABLED"
    status: str = "VALID"
    status_reason: str = "JobQueue Healthy"
    scheduling_policy_arn: str | None = None
    job_queue_type: str = SAGEMAKER_TRAINING
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
    idle_resource_assignment_strategy: str


@dataclass(frozen=True)
class SchedulingPolicy:
    name: str
    arn: str
    fairshare_policy: FairsharePolicy | None = None
    quota_share_policy: QuotaSharePolicy | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "QUOTA" if self.quota_share_policy is not None else "FAIRSHARE"


@dataclass(frozen=True)
class QuotaShareCapacityLimit:
    max_capacity: int
    capacity_unit: str


@dataclass(frozen=True)
class QuotaShareResourceSharingConfiguration:
    strategy: str
    borrow_limit: int | None = None


@dataclass(frozen=True)
class QuotaSharePreemptionConfiguration:
    in_share_preemption: str


@dataclass(frozen=True)
class QuotaShare:
    quota_share_name: str
    quota_share_arn: str
    job_queue_arn: str
    capacity_limits: tuple[QuotaShareCapacityLimit, ...]
    resource_sharing_configuration: QuotaShareResourceSharingConfiguration
    preemption_configuration: QuotaSharePreemptionConfiguration
    state: str = "ENABLED"
    status: str = "VALID"
    tags: dict[str, str] = field(default_factory=dict)
