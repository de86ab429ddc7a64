"""Adapter between the runtime's domain jobs and the pure planner (placeholder: no decisions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchd.domain.arns import Arns
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue
from batchd.storage.store import Store

__all__ = ["Action", "Decision", "Planning"]


@dataclass(frozen=True)
class Decision:
    kind: str  # dispatch | block | unblock | time-limit | preempt | timeout
    job_id: str
    reason: str = ""
    code: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Action:
    kind: str  # start | stop
    job_id: str


class Planning:
    def __init__(self, store: Store, arns: Arns, default_backend: str) -> None:
        self.store = store
        self.arns = arns
        self.default_backend = default_backend
        self._training_jobs: dict[str, str] = {}

    async def reload(self) -> None:
        pass

    def add(self, job: ServiceJob) -> None:
        self.replace(job)

    def replace(self, job: ServiceJob) -> None:
        if job.current is not None:
            self._training_jobs[job.current.training_job_name] = job.job_id

    def remove(self, job: ServiceJob) -> None:
        if job.current is not None:
            self._training_jobs.pop(job.current.training_job_name, None)

    def released(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        pass

    def job_of_training_job(self, name: str) -> str | None:
        return self._training_jobs.get(name)

    def backend_of(self, environment: str) -> str:
        return self.default_backend

    def plan(self, jobs: Mapping[str, ServiceJob], now: int) -> list[Decision]:
        return []

    def snapshot(self, queue: JobQueue, jobs: Mapping[str, ServiceJob], now: int) -> dict[str, Any]:
        return {}
