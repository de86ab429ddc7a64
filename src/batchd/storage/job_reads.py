"""Reads of service jobs: by id for Describe, pages for List, the active ones for the runtime."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, tuple_
from sqlalchemy.engine import Connection

from batchd import jsontext
from batchd.domain.jobs import ServiceJob
from batchd.domain.status import JobStatus
from batchd.storage.batching import Batcher
from batchd.storage.cache import MISS, TtlCache
from batchd.storage.database import Database
from batchd.storage.rows import ACTIVE_STATUSES, BY_IDS, job_of, jobs_in, rows_by_id
from batchd.storage.schema import jobs

__all__ = ["JobQuery", "JobReads"]

_CHUNK = 2000
# Seeks (queue, share_identifier, status) of ix_jobs_queue_share, one per active status.
_SHARE_ACTIVE = (
    select(literal(1))
    .where(
        jobs.c.queue == bindparam("queue"),
        jobs.c.share_identifier == bindparam("share"),
        jobs.c.status.in_(ACTIVE_STATUSES),
    )
    .limit(1)
)


@dataclass(frozen=True)
class JobQuery:
    """One page of ListServiceJobs, newest first."""

    queue: str
    limit: int
    statuses: tuple[str, ...] | None = None  # None: every status
    name: str | None = None  # lower-cased
    name_prefix: bool = False
    created_before: int | None = None
    created_after: int | None = None
    share_identifier: str | None = None
    quota_share_name: str | None = None
    after: tuple[int, str] | None = None  # keyset cursor: (created_at, job_id) of the last row


def _document(doc: str, status: str) -> dict[str, Any]:
    data: dict[str, Any] = jsontext.loads(doc)
    data["status"] = status  # the column is authoritative (see rows.job_of)
    return data


class JobReads:
    def __init__(self, db: Database, waiting: TtlCache[str, int]) -> None:
        self._db = db
        # Concurrent Describes share one read.
        self._documents: Batcher[str, dict[str, Any] | None] = Batcher(self._read_documents)
        self._waiting = waiting  # queue -> SUBMITTED count; JobWrites.submit adds its own

    async def get(self, job_id: str) -> ServiceJob | None:
        found = await self._db.read_by_key(
            lambda conn: conn.execute(BY_IDS, {"ids": [job_id]}).one_or_none()
        )
        return None if found is None else job_of(found.doc, found.status)

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
        """Many jobs by id, in chunks that stay under every driver's parameter limit."""
        ids = list(job_ids)
        return await self._db.read(lambda conn: jobs_in(conn, ids))

    async def document(self, job_id: str) -> dict[str, Any] | None:
        """A job as stored, wire-keyed: what Describe serializes, without building objects."""
        return await self._documents.submit(job_id)

    async def _read_documents(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        unique = list(dict.fromkeys(job_ids))

        found = await self._db.read_by_key(lambda conn: rows_by_id(conn, unique))
        return [_document(*found[i]) if i in found else None for i in job_ids]

    async def by_token(self, token: str) -> ServiceJob | None:
        stmt = select(jobs.c.status, jobs.c.doc).where(jobs.c.client_token == token)
        row = await self._db.read(lambda conn: conn.execute(stmt).one_or_none())
        return None if row is None else job_of(row.doc, row.status)

    async def page(self, query: JobQuery) -> list[dict[str, Any]]:
        """One page of stored job documents (wire-keyed), newest first: what List serializes."""
        c = jobs.c
        conditions: list[Any] = [c.queue == query.queue]
        narrow: list[Any] | None = None
        if query.name is not None and query.name_prefix:
            conditions.append(c.job_name_lower.startswith(query.name, autoescape=True))
            if self._db.dialect == "sqlite":
                # SQLite's LIKE folds case and so uses no index: the same prefix as a range on
                # the (queue, job_name_lower) index (binary order, as SQLite compares text).
                narrow = [
                    *conditions,
                    c.job_name_lower >= query.name,
                    c.job_name_lower < query.name + "\U0010ffff",
                ]
        elif query.name is not None:
            conditions.append(c.job_name_lower == query.name)
        if query.statuses is not None:
            conditions.append(c.status.in_(query.statuses))
        if query.created_before is not None:
            conditions.append(c.created_at < query.created_before)
        if query.created_after is not None:
            conditions.append(c.created_at > query.created_after)
        if query.share_identifier is not None:
            conditions.append(c.share_identifier == query.share_identifier)
        if query.quota_share_name is not None:
            conditions.append(c.quota_share_name == query.quota_share_name)
        if query.after is not None:
            conditions.append(tuple_(c.created_at, c.job_id) < tuple_(*query.after))
        stmt = (
            select(c.status, c.doc)
            .where(and_(*conditions, *(narrow or ())))
            .order_by(c.created_at.desc(), c.job_id.desc())
            .limit(query.limit)
        )
        if narrow is None:
            rows = await self._db.read(lambda conn: conn.execute(stmt).all())
        else:
            rows = await self._db.read(lambda conn: _by_name_prefix(conn, stmt, narrow))
        return [_document(row.doc, row.status) for row in rows]

    async def stream_active(self, queue: str | None = None) -> AsyncIterator[ServiceJob]:
        """Every non-terminal job in submission order, read in chunks so a million never sit
        in memory at once. Each status is read along its (status, seq) index and the
        statuses are merged by seq, which needs no sort in the database."""
        heads: dict[str, deque[tuple[int, str]]] = {}
        for status in ACTIVE_STATUSES:
            heads[status] = deque(await self._active_chunk(status, -1, queue))
        while True:
            live = [(rows[0][0], status) for status, rows in heads.items() if rows]
            if not live:
                return
            _, status = min(live)
            rows = heads[status]
            seq, doc = rows.popleft()
            yield job_of(doc, status)
            if not rows:
                rows.extend(await self._active_chunk(status, seq, queue))

    async def _active_chunk(
        self, status: str, after: int, queue: str | None
    ) -> list[tuple[int, str]]:
        stmt = (
            select(jobs.c.seq, jobs.c.doc)
            .where(jobs.c.status == status, jobs.c.seq > after)
            .order_by(jobs.c.seq)
            .limit(_CHUNK)
        )
        if queue is not None:
            stmt = stmt.where(jobs.c.queue == queue)
        rows = await self._db.read(lambda conn: conn.execute(stmt).all())
        return [(row.seq, row.doc) for row in rows]

    async def active_ids(self, queue: str, quota_share: str | None = None) -> list[str]:
        stmt = select(jobs.c.job_id).where(
            jobs.c.queue == queue, jobs.c.status.in_(ACTIVE_STATUSES)
        )
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        return await self._db.read(lambda conn: list(conn.execute(stmt).scalars()))

    async def count_active(self, *, queue: str, quota_share: str | None = None) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status.in_(ACTIVE_STATUSES))
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        return int(await self._db.read(lambda conn: conn.execute(stmt).scalar_one()))

    async def share_active(self, queue: str, share: str) -> bool:
        """Whether ``queue`` has an active job of ``share``: a few index seeks, where listing
        the active shares reads every job the queue ever had."""
        params = {"queue": queue, "share": share}
        found = await self._db.read_by_key(lambda conn: conn.execute(_SHARE_ACTIVE, params).first())
        return found is not None

    async def active_share_identifiers(self, queue: str, limit: int) -> set[str]:
        stmt = (
            select(jobs.c.share_identifier)
            .where(
                jobs.c.queue == queue,
                jobs.c.status.in_(ACTIVE_STATUSES),
                jobs.c.share_identifier.is_not(None),
            )
            .distinct()
            .limit(limit)
        )
        found = await self._db.read(lambda conn: list(conn.execute(stmt).scalars()))
        return {s for s in found if s is not None}

    async def count(self, *, queue: str, status: str) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status == status)
        return int(await self._db.read(lambda conn: conn.execute(stmt).scalar_one()))

    async def submitted_in(self, queue: str) -> int:
        """About how many jobs of ``queue`` await admission, for the submit limit on a replica
        that does not schedule: counted in the database at most once a second, plus this
        process's own submits since (a count per submit doubled a follower's cost)."""
        count = self._waiting.get(queue)
        if count is MISS:
            count = await self.count(queue=queue, status=JobStatus.SUBMITTED.value)
            self._waiting.put(queue, count)
        return count

    async def submitted_ids(self, limit: int = 10_000) -> list[str]:
        """Jobs awaiting admission, oldest first, by id."""
        stmt = (
            select(jobs.c.job_id)
            .where(jobs.c.status == JobStatus.SUBMITTED.value)
            .order_by(jobs.c.seq)
            .limit(limit)
        )
        return await self._db.read(lambda conn: list(conn.execute(stmt).scalars()))


# Up to this many names matching a prefix are read along the name index and sorted; more
# are dense enough that the newest-first walk of the queue finds a page of them soon.
_NARROW = 5000


def _by_name_prefix(conn: Connection, stmt: Any, narrow: list[Any]) -> list[Any]:
    matching = select(jobs.c.job_id).where(*narrow).limit(_NARROW + 1).subquery()
    count = conn.execute(select(func.count()).select_from(matching)).scalar_one()
    if count <= _NARROW:
        stmt = stmt.with_hint(jobs, "INDEXED BY ix_jobs_queue_name", "sqlite")
    return list(conn.execute(stmt).all())
