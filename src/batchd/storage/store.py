"""The Store: every read and write of durable state goes through here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from batchd.domain.codec import from_wire, to_wire
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.domain.status import ACTIVE, JobStatus
from batchd.domain.training import TrainingJob
from batchd.errors import Conflict
from batchd.storage.batching import GroupCommit
from batchd.storage.dialects import create_engine, insert_ignoring_conflicts, is_sqlite
from batchd.storage.lease import Lease
from batchd.storage.migrate import upgrade
from batchd.storage.schema import job_requests, jobs, resources, training_jobs

__all__ = ["JobQuery", "Store"]

R = TypeVar("R", ServiceEnvironment, JobQueue, SchedulingPolicy, QuotaShare)

KINDS: dict[type, str] = {
    ServiceEnvironment: "service-environment",
    JobQueue: "job-queue",
    SchedulingPolicy: "scheduling-policy",
    QuotaShare: "quota-share",
}
_ACTIVE = [s.value for s in ACTIVE]
_RESOURCE_TTL_SECONDS = 1.0


def _dump(obj: object) -> str:
    return json.dumps(to_wire(obj), separators=(",", ":"))


def _document(doc: str, status: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(doc)
    data["status"] = status  # the column is authoritative (see _job)
    return data


_UPDATE_JOB = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("k_id"))
    .values(status=bindparam("k_status"), doc=bindparam("k_doc"))
)
_UPDATE_TRAINING_JOB = (
    update(training_jobs)
    .where(training_jobs.c.name == bindparam("k_name"))
    .values(status=bindparam("k_status"), doc=bindparam("k_doc"))
)


def _job(doc: str, status: str | None = None) -> ServiceJob:
    data = json.loads(doc)
    if status is not None:
        # The column is authoritative: admission flips many statuses without rewriting docs.
        data["status"] = status
    return from_wire(ServiceJob, data)


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


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # SQLite has one writer; queueing writers here avoids SQLITE_BUSY retries.
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None
        self._submits: GroupCommit[ServiceJob, ServiceJob] = GroupCommit(self._insert_jobs)
        # Every submit reads its queue (and policy, quota share): a short-lived cache, cleared
        # by this process's own writes; other replicas' changes show within the TTL.
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self.lease = Lease(engine)

    @classmethod
    async def open(cls, url: str) -> Store:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(upgrade)
        return cls(engine)

    async def close(self) -> None:
        await self.lease.release()
        await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def _write(self) -> _Writer:
        return _Writer(self._engine, self._write_lock)

    # -- resources -------------------------------------------------------------------------

    async def get(self, cls: type[R], name: str) -> R | None:
        key = (KINDS[cls], name)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            found: R | None = cached[1]
            return found
        stmt = select(resources.c.doc).where(
            resources.c.kind == KINDS[cls], resources.c.name == name
        )
        async with self._engine.connect() as conn:
            doc = (await conn.execute(stmt)).scalar_one_or_none()
        found = None if doc is None else from_wire(cls, json.loads(doc))
        self._cache[key] = (time.monotonic() + _RESOURCE_TTL_SECONDS, found)
        return found

    def _forget(self, cls: type[R], name: str) -> None:
        self._cache.pop((KINDS[cls], name), None)

    @contextlib.asynccontextmanager
    async def _writing(self, cls: type[R], name: str) -> AsyncIterator[AsyncConnection]:
        """A write of one resource; its cached copy is dropped before and after the commit,
        so no reader can cache the old version across it."""
        self._forget(cls, name)
        try:
            async with await self._write() as conn:
                yield conn
        finally:
            self._forget(cls, name)

    async def resources(
        self,
        cls: type[R],
        *,
        prefix: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, R]]:
        """Resources of one kind in creation order, with their position for paging."""
        stmt = select(resources.c.id, resources.c.doc).where(resources.c.kind == KINDS[cls])
        if prefix is not None:
            stmt = stmt.where(resources.c.name.startswith(prefix, autoescape=True))
        if after is not None:
            stmt = stmt.where(resources.c.id > after)
        stmt = stmt.order_by(resources.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(row.id, from_wire(cls, json.loads(row.doc))) for row in rows]

    async def count(self, cls: type[R], *, prefix: str | None = None) -> int:
        stmt = select(func.count()).where(resources.c.kind == KINDS[cls])
        if prefix is not None:
            stmt = stmt.where(resources.c.name.startswith(prefix, autoescape=True))
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def create(self, cls: type[R], name: str, obj: R, what: str) -> None:
        async with self._writing(cls, name) as conn:
            try:
                await conn.execute(
                    insert(resources).values(kind=KINDS[cls], name=name, doc=_dump(obj))
                )
            except IntegrityError as err:
                raise Conflict(f"{what} {name} already exists") from err

    async def save(self, cls: type[R], name: str, obj: R) -> None:
        async with self._writing(cls, name) as conn:
            await conn.execute(
                update(resources)
                .where(resources.c.kind == KINDS[cls], resources.c.name == name)
                .values(doc=_dump(obj))
            )

    async def modify(self, cls: type[R], name: str, change: Callable[[R], R]) -> R | None:
        """Read, change and write one resource in one transaction (the row locked on
        PostgreSQL, writers serialized on SQLite), so concurrent changes never overwrite
        each other. None when it does not exist; an exception from ``change`` writes nothing.
        """
        where = (resources.c.kind == KINDS[cls], resources.c.name == name)
        async with self._writing(cls, name) as conn:
            stmt = select(resources.c.doc).where(*where).with_for_update()
            doc = (await conn.execute(stmt)).scalar_one_or_none()
            if doc is None:
                return None
            new = change(from_wire(cls, json.loads(doc)))
            await conn.execute(update(resources).where(*where).values(doc=_dump(new)))
        return new

    async def delete(self, cls: type[R], name: str) -> None:
        async with self._writing(cls, name) as conn:
            await conn.execute(
                delete(resources).where(resources.c.kind == KINDS[cls], resources.c.name == name)
            )

    # -- jobs ------------------------------------------------------------------------------

    async def submit(self, job: ServiceJob) -> ServiceJob:
        """Store a new job durably; with a reused client token, the job stored first."""
        return await self._submits.submit(job)

    async def _insert_jobs(self, batch: list[ServiceJob]) -> list[ServiceJob]:
        rows = [_job_row(job) for job in batch]
        async with await self._write() as conn:
            await conn.execute(insert_ignoring_conflicts(self._engine, jobs), rows)
            tokens = {job.client_token: job.job_id for job in batch if job.client_token}
            owners: dict[str, str] = {}
            if tokens:
                found = await conn.execute(
                    select(jobs.c.client_token, jobs.c.job_id).where(
                        jobs.c.client_token.in_(list(tokens))
                    )
                )
                owners = {row.client_token: row.job_id for row in found}
            # Only a reused token (a client's retry) needs the job stored first.
            lost = [owners[t] for t, job_id in tokens.items() if owners.get(t, job_id) != job_id]
            earlier = await self._jobs_in(conn, lost) if lost else {}
        return [
            earlier.get(owners.get(job.client_token or "", ""), job) if job.client_token else job
            for job in batch
        ]

    async def _jobs_in(
        self, conn: AsyncConnection, job_ids: Sequence[str]
    ) -> dict[str, ServiceJob]:
        found: dict[str, ServiceJob] = {}
        for start in range(0, len(job_ids), 500):
            rows = await conn.execute(
                select(jobs.c.job_id, jobs.c.status, jobs.c.doc).where(
                    jobs.c.job_id.in_(job_ids[start : start + 500])
                )
            )
            found.update({row.job_id: _job(row.doc, row.status) for row in rows})
        return found

    async def job(self, job_id: str) -> ServiceJob | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(jobs.c.status, jobs.c.doc).where(jobs.c.job_id == job_id))
            ).one_or_none()
        return None if row is None else _job(row.doc, row.status)

    async def jobs(self, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
        """Many jobs by id, in chunks that stay under every driver's parameter limit."""
        async with self._engine.connect() as conn:
            return await self._jobs_in(conn, job_ids)

    async def job_document(self, job_id: str) -> dict[str, Any] | None:
        """A job as stored, wire-keyed: what Describe serializes, without building objects."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(jobs.c.status, jobs.c.doc).where(jobs.c.job_id == job_id))
            ).one_or_none()
        return None if row is None else _document(row.doc, row.status)

    async def job_by_token(self, token: str) -> ServiceJob | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(jobs.c.status, jobs.c.doc).where(jobs.c.client_token == token)
                )
            ).one_or_none()
        return None if row is None else _job(row.doc, row.status)

    async def list_jobs(self, query: JobQuery) -> list[ServiceJob]:
        """One page of jobs, newest first."""
        return [from_wire(ServiceJob, doc) for doc in await self.list_job_documents(query)]

    async def list_job_documents(self, query: JobQuery) -> list[dict[str, Any]]:
        """One page of stored job documents (wire-keyed), newest first: what List serializes."""
        c = jobs.c
        conditions: list[Any] = [c.queue == query.queue]
        if query.statuses is not None:
            conditions.append(c.status.in_(query.statuses))
        if query.name is not None:
            if query.name_prefix:
                conditions.append(c.job_name_lower.startswith(query.name, autoescape=True))
            else:
                conditions.append(c.job_name_lower == query.name)
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
            .where(and_(*conditions))
            .order_by(c.created_at.desc(), c.job_id.desc())
            .limit(query.limit)
        )
        async with self._engine.connect() as conn:
            return [_document(row.doc, row.status) for row in await conn.execute(stmt)]

    async def save_jobs(
        self,
        changed: Sequence[ServiceJob],
        trained: Sequence[TrainingJob] = (),
        admitted: Sequence[str] = (),
    ) -> None:
        """Write jobs' new state, their training jobs and admissions, in one transaction.

        ``admitted`` jobs only move from SUBMITTED to RUNNABLE: one statement for all of them.
        """
        if not changed and not trained and not admitted:
            return
        async with await self._write() as conn:
            for start in range(0, len(admitted), 500):
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.job_id.in_(admitted[start : start + 500]))
                    .where(jobs.c.status == JobStatus.SUBMITTED.value)
                    .values(status=JobStatus.RUNNABLE.value)
                )
            if changed:  # one executemany, not a statement per job
                await conn.execute(
                    _UPDATE_JOB,
                    [
                        {"k_id": j.job_id, "k_status": j.status.value, "k_doc": _dump(j)}
                        for j in changed
                    ],
                )
            await self._save_training_jobs(conn, trained)

    async def _save_training_jobs(
        self, conn: AsyncConnection, records: Sequence[TrainingJob]
    ) -> None:
        if not records:
            return
        names = [r.training_job_name for r in records]
        existing = set(
            (
                await conn.execute(
                    select(training_jobs.c.name).where(training_jobs.c.name.in_(names))
                )
            ).scalars()
        )
        fresh = [r for r in records if r.training_job_name not in existing]
        known = [r for r in records if r.training_job_name in existing]
        if fresh:
            await conn.execute(
                insert(training_jobs),
                [
                    {
                        "name": r.training_job_name,
                        "job_id": r.job_id,
                        "created_at": r.creation_time,
                        "status": r.training_job_status,
                        "doc": _dump(r),
                    }
                    for r in fresh
                ],
            )
        if known:
            await conn.execute(
                _UPDATE_TRAINING_JOB,
                [
                    {
                        "k_name": r.training_job_name,
                        "k_status": r.training_job_status,
                        "k_doc": _dump(r),
                    }
                    for r in known
                ],
            )

    async def training_job(self, name: str) -> TrainingJob | None:
        stmt = select(training_jobs.c.doc).where(training_jobs.c.name == name)
        async with self._engine.connect() as conn:
            doc = (await conn.execute(stmt)).scalar_one_or_none()
        return None if doc is None else from_wire(TrainingJob, json.loads(doc))

    async def list_training_jobs(
        self,
        *,
        limit: int,
        name_contains: str | None = None,
        status: str | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        after: tuple[int, str] | None = None,
    ) -> list[TrainingJob]:
        """Newest first, keyset-paged on (created_at, name)."""
        c = training_jobs.c
        stmt = select(c.doc)
        if name_contains:
            stmt = stmt.where(c.name.contains(name_contains, autoescape=True))
        if status:
            stmt = stmt.where(c.status == status)
        if created_after is not None:
            stmt = stmt.where(c.created_at > created_after)
        if created_before is not None:
            stmt = stmt.where(c.created_at < created_before)
        if after is not None:
            stmt = stmt.where(tuple_(c.created_at, c.name) < tuple_(*after))
        stmt = stmt.order_by(c.created_at.desc(), c.name.desc()).limit(limit)
        async with self._engine.connect() as conn:
            docs = (await conn.execute(stmt)).scalars()
            return [from_wire(TrainingJob, json.loads(doc)) for doc in docs]

    async def active_jobs(self) -> list[ServiceJob]:
        return [job async for job in self.stream_active_jobs()]

    async def stream_active_jobs(self, queue: str | None = None) -> AsyncIterator[ServiceJob]:
        """Every non-terminal job, read in chunks so a million never sit in memory at once."""
        stmt = (
            select(jobs.c.status, jobs.c.doc)
            .where(jobs.c.status.in_(_ACTIVE))
            .order_by(jobs.c.seq)
            .execution_options(yield_per=2000)
        )
        if queue is not None:
            stmt = stmt.where(jobs.c.queue == queue)
        async with self._engine.connect() as conn:
            result = await conn.stream(stmt)
            async for row in result:
                yield _job(row.doc, row.status)

    async def active_job_ids(self, queue: str, quota_share: str | None = None) -> list[str]:
        stmt = select(jobs.c.job_id).where(jobs.c.queue == queue, jobs.c.status.in_(_ACTIVE))
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        async with self._engine.connect() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def active_in(self, *, queue: str, quota_share: str | None = None) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status.in_(_ACTIVE))
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def active_share_identifiers(self, queue: str, limit: int) -> set[str]:
        stmt = (
            select(jobs.c.share_identifier)
            .where(
                jobs.c.queue == queue,
                jobs.c.status.in_(_ACTIVE),
                jobs.c.share_identifier.is_not(None),
            )
            .distinct()
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return {s for s in (await conn.execute(stmt)).scalars() if s is not None}

    async def retire_queue(self, queue: str, suffix: str) -> None:
        """Detach a deleted queue's jobs from its name, so a new queue of that name starts
        empty; the jobs keep their ARNs and stay describable."""
        async with await self._write() as conn:
            await conn.execute(
                update(jobs).where(jobs.c.queue == queue).values(queue=f"{queue}{suffix}")
            )

    async def count_jobs(self, *, queue: str, status: str) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status == status)
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    # -- requests from follower replicas to the scheduling leader ---------------------------

    async def request(self, kind: str, job_id: str | None, body: dict[str, Any]) -> None:
        async with await self._write() as conn:
            await conn.execute(
                insert(job_requests).values(kind=kind, job_id=job_id, body=json.dumps(body))
            )

    async def take_requests(self, limit: int = 1000) -> list[tuple[str, str | None, Any]]:
        """The oldest requests, removed as they are read (the leader applies them at once)."""
        async with self._engine.connect() as conn:  # usually there are none: no write lock
            if (await conn.execute(select(job_requests.c.id).limit(1))).first() is None:
                return []
        async with await self._write() as conn:
            rows = (
                await conn.execute(select(job_requests).order_by(job_requests.c.id).limit(limit))
            ).all()
            if rows:  # exactly the rows read: ids can commit out of order on PostgreSQL
                await conn.execute(
                    delete(job_requests).where(job_requests.c.id.in_([r.id for r in rows]))
                )
        return [(row.kind, row.job_id, json.loads(row.body)) for row in rows]

    async def submitted_jobs(self, limit: int = 10_000) -> list[ServiceJob]:
        """Jobs awaiting admission, oldest first: submits that reached another replica."""
        stmt = (
            select(jobs.c.status, jobs.c.doc)
            .where(jobs.c.status == JobStatus.SUBMITTED.value)
            .order_by(jobs.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_job(row.doc, row.status) for row in await conn.execute(stmt)]

    async def max_seq(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.max(jobs.c.seq)))).scalar_one() or 0)


def _job_row(job: ServiceJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "seq": job.seq,
        "queue": job.queue_name,
        "status": job.status.value,
        "job_name_lower": job.job_name.lower(),
        "created_at": job.created_at,
        "share_identifier": job.share_identifier,
        "quota_share_name": job.quota_share_name,
        "client_token": job.client_token,
        "doc": _dump(job),
    }


class _Writer:
    """A write transaction, serialized per process on SQLite."""

    def __init__(self, engine: AsyncEngine, lock: asyncio.Lock | None) -> None:
        self._engine = engine
        self._lock = lock
        self._ctx: Any = None

    async def __aenter__(self) -> AsyncConnection:
        if self._lock is not None:
            await self._lock.acquire()
        try:
            self._ctx = self._engine.begin()
            conn: AsyncConnection = await self._ctx.__aenter__()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        return conn

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._ctx.__aexit__(*exc)
        finally:
            if self._lock is not None:
                self._lock.release()
