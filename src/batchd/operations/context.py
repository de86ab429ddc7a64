"""What every operation is handed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry

from batchd.clock import Clock, Ids
from batchd.domain.arns import Arns
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue
from batchd.domain.training import LogEvent
from batchd.scheduling.queue_view import QueueSnapshot
from batchd.storage.store import Store

__all__ = ["Context", "JobControl", "Limits", "LogReader"]


class JobControl(Protocol):
    """The runtime, seen from the API: the only writer of a job once it is submitted."""

    async def submitted(self, job: ServiceJob) -> None: ...

    def submitted_count(self, queue: str) -> int | None: ...

    def share_known_active(self, queue: str, share: str) -> bool: ...

    async def terminate(self, job_id: str, reason: str) -> None: ...

    async def update(
        self, job_id: str, change: Callable[[ServiceJob], ServiceJob]
    ) -> ServiceJob: ...

    async def configuration_changed(self) -> None: ...

    async def stop_training_job(self, name: str) -> None: ...

    async def terminate_queued(
        self, reason: str, queue: str, quota_share: str | None = None
    ) -> None: ...

    async def snapshot(self, queue: JobQueue) -> QueueSnapshot | None: ...

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """What the scheduler counts (finished jobs, failed attempts, waits, cycles)."""
        ...


class LogReader(Protocol):
    """Training jobs' output, one stream per host, from whichever backend ran them.

    ``backend`` names the backend that ran the training job when the caller knows it (the
    current attempt's); otherwise every backend is asked.
    """

    async def log_hosts(self, training_job_name: str, backend: str | None) -> Sequence[str]: ...

    async def read_log(
        self, training_job_name: str, backend: str | None, host: str, offset: int, limit: int
    ) -> bytes: ...

    async def read_events(
        self, training_job_name: str, backend: str | None, host: str, start: int, limit: int
    ) -> tuple[Sequence[LogEvent], int]: ...


@dataclass(frozen=True)
class Limits:
    max_environments: int = 50
    max_queues: int = 50
    max_quota_shares: int = 20
    max_active_shares: int = 500
    max_submitted_per_queue: int = 1_000_000


@dataclass(frozen=True)
class Context:
    store: Store
    arns: Arns
    clock: Clock
    ids: Ids
    control: JobControl
    logs: LogReader
    limits: Limits = Limits()
    # Names of the configured backends: the values the tag batchd:backend may take.
    backends: frozenset[str] = frozenset()
