"""Jobs accepted but not yet admitted to RUNNABLE, with a count per queue kept as they come."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from batchd.domain.jobs import ServiceJob

__all__ = ["PendingAdmissions"]


class PendingAdmissions:
    def __init__(self) -> None:
        self._jobs: dict[str, ServiceJob] = {}
        self._per_queue: Counter[str] = Counter()

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> ServiceJob | None:
        return self._jobs.get(job_id)

    def put(self, job: ServiceJob) -> None:
        """Add a job, or replace the pending version of one already here."""
        if job.job_id not in self._jobs:
            self._per_queue[job.queue_name] += 1
        self._jobs[job.job_id] = job

    def pop(self, job_id: str) -> ServiceJob | None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._per_queue[job.queue_name] -= 1
        return job

    def count(self, queue: str) -> int:
        return self._per_queue[queue]

    def drain(self) -> Iterator[ServiceJob]:
        """Every pending job, oldest first, leaving none."""
        jobs = sorted(self._jobs.values(), key=lambda j: j.seq)
        self.clear()
        return iter(jobs)

    def clear(self) -> None:
        self._jobs.clear()
        self._per_queue.clear()
