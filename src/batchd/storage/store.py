"""The Store: every read and write of durable state goes through one of its repositories."""

from __future__ import annotations

import time
from collections.abc import Callable

from batchd.storage.cache import TtlCache
from batchd.storage.database import Database, open_database, unavailable
from batchd.storage.job_reads import JobQuery, JobReads
from batchd.storage.job_writes import JobWrites
from batchd.storage.lease import Lease
from batchd.storage.mailbox import Mailbox
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
        self._waiting = waiting
        self.job_writes = JobWrites(db, waiting)
        self.job_reads = JobReads(db, waiting)
        self.training_jobs = TrainingJobs(db)
        self.mailbox = Mailbox(db)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        scratch: bool = False,
    ) -> Store:
        """``scratch``: a SQLite file for this process alone, thrown away after (the
        simulator's); see ``open_database``."""
        try:
            db = open_database(url, scratch=scratch)  # SQLite opens its lock file here
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

    def forget_cached(self) -> None:
        """Drop every cached read, for a database emptied behind the store's back (the test
        fixture's reset)."""
        self.resources.cache.clear()
        self._waiting.clear()

    async def close(self) -> None:
        await self.lease.release()
        await self.db.close()

    @property
    def private(self) -> bool:
        """No other replica can use this store (a scratch database): nothing is forwarded
        through it, and no other leader can take over."""
        return self.db.scratch

    @property
    def dialect(self) -> str:
        return self.db.dialect
