"""The Store: every read and write of durable state goes through one of its repositories."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from batchd.domain.jobs import ServiceJob
from batchd.domain.training import TrainingJob
from batchd.storage.cache import TtlCache
from batchd.storage.database import Database, open_database, unavailable
from batchd.storage.job_reads import JobQuery, JobReads
from batchd.storage.job_writes import JobWrites
from batchd.storage.lease import Lease
from batchd.storage.mailbox import Mailbox, MailKind
from batchd.storage.migrate import upgrade
from batchd.storage.resources import CACHE_CAPACITY, CACHE_TTL_SECONDS, Resources
from batchd.storage.training_jobs import TrainingJobs

__all__ = ["JobQuery", "Store"]


class Store:
    def __init__(self, db: Database, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.lease = Lease(db)
        self.resources = Resources(db, monotonic)
        # How many jobs each queue has awaiting admission, as last counted: submits add to
        # it, reads refresh it once it expires.
        waiting: TtlCache[str, int] = TtlCache(CACHE_TTL_SECONDS, monotonic, CACHE_CAPACITY)
        self.job_writes = JobWrites(db, waiting)
        self.job_reads = JobReads(db, waiting)
        self.training_jobs = TrainingJobs(db)
        self.mailbox = Mailbox(db)

    @classmethod
    async def open(cls, url: str, *, monotonic: Callable[[], float] = time.monotonic) -> Store:
        try:
            db = open_database(url)  # SQLite opens its lock file here
            try:
                await db.write(upgrade)
            except BaseException:
                await db.close()
                raise
        except Exception as err:
            reason = unavailable(url, err)
            if reason is None:
                raise
            raise reason from None
        return cls(db, monotonic)

    async def close(self) -> None:
        await self.lease.release()
        await self.db.close()

    @property
    def dialect(self) -> str:
        return self.db.dialect

    # TEMPORARY: runtime/ moves to the repositories on merge. The old names runtime/* calls,
    # each delegating to its repository (store.resources(cls) is Resources.__call__).

    async def job(self, job_id: str) -> ServiceJob | None:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return await self.job_reads.get(job_id)

    async def jobs(self, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return await self.job_reads.get_many(job_ids)

    def stream_active_jobs(self, queue: str | None = None) -> AsyncIterator[ServiceJob]:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return self.job_reads.stream_active(queue)

    async def active_job_ids(self, queue: str, quota_share: str | None = None) -> list[str]:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return await self.job_reads.active_ids(queue, quota_share)

    async def submitted_job_ids(self, limit: int = 10_000) -> list[str]:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return await self.job_reads.submitted_ids(limit)

    async def save_jobs(
        self,
        changed: Sequence[ServiceJob],
        trained: Sequence[TrainingJob] = (),
        admitted: Sequence[str] = (),
    ) -> None:
        # TEMPORARY: runtime/ moves to the repositories on merge
        await self.job_writes.save(changed, trained, admitted)

    async def training_job(self, name: str) -> TrainingJob | None:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return await self.training_jobs.get(name)

    async def request(self, kind: str, job_id: str | None, body: dict[str, Any]) -> None:
        # TEMPORARY: runtime/ moves to the repositories on merge
        await self.mailbox.post(MailKind(kind), job_id, body)

    async def take_requests(self, limit: int = 1000) -> list[tuple[str, str | None, Any]]:
        # TEMPORARY: runtime/ moves to the repositories on merge
        return [(m.kind, m.job_id, m.body) for m in await self.mailbox.take(limit)]
