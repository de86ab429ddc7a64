"""The planner's inputs: plain frozen records the runtime builds from its store.

Times are epoch milliseconds (``int``); durations carry their unit in the name. Capacity is counted
in instances: a job's ``demand`` maps an instance type to a count, and an environment's ``limits``
map either the single unit ``NUM_INSTANCES`` (every type counts) or instance types (quota-managed:
a type without a limit never fits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "DISPATCHED_STATUSES",
    "NUM_INSTANCES",
    "Environment",
    "FairsharePolicy",
    "Job",
    "JobStatus",
    "Queue",
    "QueueKind",
    "QuotaShare",
    "SchedulingState",
    "SharingStrategy",
    "TimeLimitAction",
]

NUM_INSTANCES: Final = "NUM_INSTANCES"

QueueKind = Literal["FIFO", "FAIRSHARE", "QUOTA"]
SharingStrategy = Literal["RESERVE", "LEND", "LEND_AND_BORROW"]
JobStatus = Literal["RUNNABLE", "SCHEDULED", "STARTING", "RUNNING"]

DISPATCHED_STATUSES: Final[frozenset[str]] = frozenset({"SCHEDULED", "STARTING", "RUNNING"})


@dataclass(frozen=True, slots=True)
class Environment:
    """A service environment; ``enabled`` means state ENABLED and status VALID."""

    name: str
    enabled: bool
    limits: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class FairsharePolicy:
    """Fair-share settings; ``weights`` pairs share identifiers (``prefix*`` ok) and weights."""

    share_decay_seconds: int = 0
    compute_reservation: int = 0
    weights: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class QuotaShare:
    """A quota share; ``borrow_limit`` is a percent of own limits, -1 for unlimited."""

    name: str
    enabled: bool
    limits: Mapping[str, int]
    strategy: SharingStrategy
    borrow_limit: int = -1
    in_share_preemption: bool = False
    order: int = 0


@dataclass(frozen=True, slots=True)
class TimeLimitAction:
    """Terminate a RUNNABLE head blocked by ``reason`` (a code) for ``max_time_seconds``."""

    reason: str
    max_time_seconds: int


@dataclass(frozen=True, slots=True)
class Queue:
    """A SAGEMAKER_TRAINING job queue. Disabled queues still dispatch what they hold."""

    name: str
    priority: int
    environment: str | None
    kind: QueueKind = "FIFO"
    fairshare: FairsharePolicy | None = None
    quota_shares: tuple[QuotaShare, ...] = ()
    time_limit_actions: tuple[TimeLimitAction, ...] = ()

    def time_limit_seconds(self, code: str) -> int | None:
        """The configured limit for a blocking code, or None when no action names it."""
        for action in self.time_limit_actions:
            if action.reason == code:
                return action.max_time_seconds
        return None


@dataclass(frozen=True, slots=True)
class Job:
    """A service job the planner may act on: RUNNABLE, or holding capacity.

    ``blocked_reason`` is the code part of the blocking statusReason the job currently shows, and
    ``blocked_since`` when that started. ``capacity_failed`` says its last dispatch ended with a
    capacity error; ``stopping`` says a stop is in flight (it holds capacity but is never chosen).
    """

    job_id: str
    queue: str
    created_at: int
    seq: int
    priority: int = 0
    share_identifier: str | None = None
    quota_share_name: str | None = None
    demand: Mapping[str, int] = field(default_factory=dict)
    status: JobStatus = "RUNNABLE"
    environment: str | None = None
    scheduled_at: int | None = None
    started_at: int | None = None
    attempt_timeout_seconds: int | None = None
    blocked_reason: str | None = None
    blocked_since: int | None = None
    capacity_failed: bool = False
    stopping: bool = False

    @property
    def lane(self) -> str:
        """The lane the job waits in: its quota share, else its share identifier, else ``""``."""
        return self.quota_share_name or self.share_identifier or ""

    @property
    def instances(self) -> int:
        """Instances of every type the job needs."""
        return sum(self.demand.values())

    @property
    def is_dispatched(self) -> bool:
        return self.status in DISPATCHED_STATUSES


@dataclass(frozen=True, slots=True)
class SchedulingState:
    """The configuration a pass plans against: environments and queues by name."""

    environments: Mapping[str, Environment]
    queues: Mapping[str, Queue]

    @classmethod
    def of(cls, environments: Iterable[Environment], queues: Iterable[Queue]) -> SchedulingState:
        return cls(
            environments={env.name: env for env in environments},
            queues={queue.name: queue for queue in queues},
        )
