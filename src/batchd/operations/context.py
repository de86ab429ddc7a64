"""What every operation is handed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from batchd.clock import Clock, Ids
from batchd.domain.arns import Arns
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue
from batchd.storage.store import Store

__all__ = ["Context", "JobControl", "Limits"]


class JobControl(Protocol):
    """The runtime, seen from the API: the only writer of a job once it is submitted."""

    async def submitted(self, job: ServiceJob) -> None: ...

    def submitted_count(self, queue: str) -> int | None: ...

    async def terminate(self, job_id: str, reason: str) -> None: ...

    async def update(
        self, job_id: str, change: Callable[[ServiceJob], ServiceJob]
    ) -> ServiceJob: ...

    async def configuration_changed(self) -> None: ...

    async def stop_training_job(self, name: str) -> None: ...

    async def terminate_queued(
        self, reason: str, queue: str, quota_share: str | None = None
    ) -> None: ...

    async def snapshot(self, queue: JobQueue) -> Mapping[str, Any]: ...


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
    limits: Limits = Limits()
    # Names of the configured backends: the values the tag batchd:backend may take.
    backends: frozenset[str] = frozenset()
