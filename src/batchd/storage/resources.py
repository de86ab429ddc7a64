"""Environments, queues, scheduling policies and quota shares: few rows, read on every submit."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from batchd import jsontext
from batchd.domain.codec import from_wire
from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.errors import Conflict
from batchd.storage.cache import MISS, TtlCache
from batchd.storage.database import Database
from batchd.storage.rows import dump
from batchd.storage.schema import jobs, resources

__all__ = ["CACHE_CAPACITY", "CACHE_TTL_SECONDS", "KINDS", "Resources"]

R = TypeVar("R", ServiceEnvironment, JobQueue, SchedulingPolicy, QuotaShare)

KINDS: dict[type, str] = {
    ServiceEnvironment: "service-environment",
    JobQueue: "job-queue",
    SchedulingPolicy: "scheduling-policy",
    QuotaShare: "quota-share",
}
CACHE_TTL_SECONDS = 1.0
# Far more than the resources the limits allow (50 queues with 20 quota shares each, ...), so
# real names stay cached; names that do not exist are cached too, and evicted first.
CACHE_CAPACITY = 4096


class Resources:
    def __init__(
        self, db: Database, monotonic: Callable[[], float], capacity: int = CACHE_CAPACITY
    ) -> None:
        self._db = db
        # Every submit reads its queue (and policy, quota share): a short-lived cache, cleared
        # by this process's own writes; other replicas' changes show within the TTL.
        self.cache: TtlCache[tuple[str, str], Any] = TtlCache(
            CACHE_TTL_SECONDS, monotonic, capacity
        )

    async def get(self, cls: type[R], name: str) -> R | None:
        key = (KINDS[cls], name)
        cached = self.cache.get(key)
        if cached is not MISS:
            found: R | None = cached
            return found
        stmt = select(resources.c.doc).where(
            resources.c.kind == KINDS[cls], resources.c.name == name
        )
        doc = await self._db.read(lambda conn: conn.execute(stmt).scalar_one_or_none())
        found = None if doc is None else from_wire(cls, jsontext.loads(doc))
        self.cache.put(key, found)
        return found

    async def _write(self, cls: type[R], name: str, work: Callable[[Connection], Any]) -> Any:
        """A write of one resource; its cached copy is dropped before and after the commit,
        so no reader can cache the old version across it."""
        key = (KINDS[cls], name)
        self.cache.forget(key)
        try:
            return await self._db.write(work)
        finally:
            self.cache.forget(key)

    async def list(
        self,
        cls: type[R],
        *,
        prefix: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[tuple[int, R]]:
        """Resources of one kind in creation order, with their position for paging."""
        stmt = select(resources.c.id, resources.c.doc).where(resources.c.kind == KINDS[cls])
        if prefix is not None:
            stmt = stmt.where(resources.c.name.startswith(prefix, autoescape=True))
        if after is not None:
            stmt = stmt.where(resources.c.id > after)
        stmt = stmt.order_by(resources.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(stmt).all())
        return [(row.id, from_wire(cls, jsontext.loads(row.doc))) for row in rows]

    async def count(self, cls: type[R], *, prefix: str | None = None) -> int:
        stmt = select(func.count()).where(resources.c.kind == KINDS[cls])
        if prefix is not None:
            stmt = stmt.where(resources.c.name.startswith(prefix, autoescape=True))
        return int(await self._db.read(lambda conn: conn.execute(stmt).scalar_one()))

    async def create(self, cls: type[R], name: str, obj: R, what: str) -> None:
        stmt = insert(resources).values(kind=KINDS[cls], name=name, doc=dump(obj))
        try:
            await self._write(cls, name, lambda conn: conn.execute(stmt))
        except IntegrityError as err:
            raise Conflict(f"{what} {name} already exists") from err

    async def save(self, cls: type[R], name: str, obj: R) -> None:
        stmt = (
            update(resources)
            .where(resources.c.kind == KINDS[cls], resources.c.name == name)
            .values(doc=dump(obj))
        )
        await self._write(cls, name, lambda conn: conn.execute(stmt))

    async def modify(self, cls: type[R], name: str, change: Callable[[R], R]) -> R | None:
        """Read, change and write one resource in one transaction (the row locked on
        PostgreSQL, the database write-locked on SQLite), so concurrent changes never
        overwrite each other. None when it does not exist; an exception from ``change``
        writes nothing.
        """
        where = (resources.c.kind == KINDS[cls], resources.c.name == name)

        def work(conn: Connection) -> R | None:
            stmt = select(resources.c.doc).where(*where).with_for_update()
            doc = conn.execute(stmt).scalar_one_or_none()
            if doc is None:
                return None
            new = change(from_wire(cls, jsontext.loads(doc)))
            conn.execute(update(resources).where(*where).values(doc=dump(new)))
            return new

        result: R | None = await self._write(cls, name, work)
        return result

    async def delete_queue(self, name: str, retired_as: str) -> None:
        """A job queue and its quota shares, in one transaction that also moves the queue's
        jobs to the name ``retired_as``, so a new queue of that name starts empty (the jobs
        keep their ARNs and stay describable)."""
        queue = (resources.c.kind == KINDS[JobQueue]) & (resources.c.name == name)
        shares = (resources.c.kind == KINDS[QuotaShare]) & resources.c.name.startswith(
            f"{name}/", autoescape=True
        )

        def work(conn: Connection) -> list[str]:
            found = list(conn.execute(select(resources.c.name).where(shares)).scalars())
            conn.execute(delete(resources).where(queue | shares))
            conn.execute(update(jobs).where(jobs.c.queue == name).values(queue=retired_as))
            return found

        try:
            for share in await self._db.write(work):
                self.cache.forget((KINDS[QuotaShare], share))
        finally:
            self.cache.forget((KINDS[JobQueue], name))

    async def delete(self, cls: type[R], name: str) -> None:
        stmt = delete(resources).where(resources.c.kind == KINDS[cls], resources.c.name == name)
        await self._write(cls, name, lambda conn: conn.execute(stmt))
