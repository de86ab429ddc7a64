"""The Store: every read and write of durable state goes through here."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from batchd import jsontext
from batchd.domain.codec import from_wire, to_wire
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.domain.status import ACTIVE, JobStatus
from batchd.domain.training import TrainingJob
from batchd.errors import Conflict
from batchd.storage.batching import Batcher
from batchd.storage.database import Database, open_database, unavailable
from batchd.storage.dialects import insert_new_rows
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
_CHUNK = 2000


def _dump(obj: object) -> str:
    return jsontext.dumps_text(to_wire(obj))


def _document(doc: str, status: str) -> dict[str, Any]:
    data: dict[str, Any] = jsontext.loads(doc)
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


# Built once: composing a statement costs more than SQLite takes to run a key lookup.
_BY_IDS = select(jobs.c.job_id, jobs.c.status, jobs.c.doc).where(
    jobs.c.job_id.in_(bindparam("ids", expanding=True))
)
_ADMIT = (
    update(jobs)
    .where(jobs.c.job_id.in_(bindparam("ids", expanding=True)))
    .where(jobs.c.status == JobStatus.SUBMITTED.value)
    .values(status=JobStatus.RUNNABLE.value)
)


def _job(doc: str, status: str | None = None) -> ServiceJob:
    data = jsontext.loads(doc)
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
    def __init__(self, db: Database) -> None:
        self.db = db
        # Concurrent submits share one commit; concurrent Describes share one read.
        self._submits: Batcher[ServiceJob | _Admission, ServiceJob | None] = Batcher(
            self._insert_jobs
        )
        self._documents: Batcher[str, dict[str, Any] | None] = Batcher(self._read_documents)
        # Every submit reads its queue (and policy, quota share): a short-lived cache, cleared
        # by this process's own writes; other replicas' changes show within the TTL.
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._waiting: dict[str, list[float]] = {}  # queue -> [expires, SUBMITTED count]
        self.lease = Lease(db)

    @classmethod
    async def open(cls, url: str) -> Store:
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
        return cls(db)

    async def close(self) -> None:
        await self.lease.release()
        await self.db.close()

    @property
    def dialect(self) -> str:
        return self.db.dialect

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
        doc = await self.db.read(lambda conn: conn.execute(stmt).scalar_one_or_none())
        found = None if doc is None else from_wire(cls, jsontext.loads(doc))
        self._cache[key] = (time.monotonic() + _RESOURCE_TTL_SECONDS, found)
        return found

    def _forget(self, cls: type[R], name: str) -> None:
        self._cache.pop((KINDS[cls], name), None)

    async def _write_resource(
        self, cls: type[R], name: str, work: Callable[[Connection], Any]
    ) -> Any:
        """A write of one resource; its cached copy is dropped before and after the commit,
        so no reader can cache the old version across it."""
        self._forget(cls, name)
        try:
            return await self.db.write(work)
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
        rows = await self.db.read(lambda conn: conn.execute(stmt).all())
        return [(row.id, from_wire(cls, jsontext.loads(row.doc))) for row in rows]

    async def count(self, cls: type[R], *, prefix: str | None = None) -> int:
        stmt = select(func.count()).where(resources.c.kind == KINDS[cls])
        if prefix is not None:
            stmt = stmt.where(resources.c.name.startswith(prefix, autoescape=True))
        return int(await self.db.read(lambda conn: conn.execute(stmt).scalar_one()))

    async def create(self, cls: type[R], name: str, obj: R, what: str) -> None:
        stmt = insert(resources).values(kind=KINDS[cls], name=name, doc=_dump(obj))
        try:
            await self._write_resource(cls, name, lambda conn: conn.execute(stmt))
        except IntegrityError as err:
            raise Conflict(f"{what} {name} already exists") from err

    async def save(self, cls: type[R], name: str, obj: R) -> None:
        stmt = (
            update(resources)
            .where(resources.c.kind == KINDS[cls], resources.c.name == name)
            .values(doc=_dump(obj))
        )
        await self._write_resource(cls, name, lambda conn: conn.execute(stmt))

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
            conn.execute(update(resources).where(*where).values(doc=_dump(new)))
            return new

        result: R | None = await self._write_resource(cls, name, work)
        return result

    async def delete(self, cls: type[R], name: str) -> None:
        stmt = delete(resources).where(resources.c.kind == KINDS[cls], resources.c.name == name)
        await self._write_resource(cls, name, lambda conn: conn.execute(stmt))

    # -- jobs ------------------------------------------------------------------------------

    async def submit(self, job: ServiceJob) -> ServiceJob:
        """Store a new job durably; with a reused client token, the job stored first."""
        stored = await self._submits.submit(job)
        assert stored is not None
        waiting = self._waiting.get(job.queue_name)
        if waiting is not None and stored is job:
            waiting[1] += 1
        return stored

    async def _insert_jobs(self, items: list[ServiceJob | _Admission]) -> list[ServiceJob | None]:
        """New jobs, and admissions riding along in the same commit.

        While jobs are being submitted the scheduler's admissions (SUBMITTED -> RUNNABLE) join
        the next submit commit instead of paying an fsync of their own; with several workers
        on one SQLite file, every commit also waits for the others' to finish.
        """
        batch = [item for item in items if isinstance(item, ServiceJob)]
        admitted = [i for item in items if isinstance(item, _Admission) for i in item.job_ids]
        rows = [_job_row(job) for job in batch]
        tokens = {job.client_token: job.job_id for job in batch if job.client_token}

        def work(conn: Connection) -> tuple[dict[str, str], dict[str, ServiceJob]]:
            _admit(conn, admitted)
            inserted = insert_new_rows(conn, jobs, rows) if rows else 0
            owners: dict[str, str] = {}
            # When every row went in, no token was taken before: nothing to look up.
            if tokens and inserted != len(rows):
                found = conn.execute(
                    select(jobs.c.client_token, jobs.c.job_id).where(
                        jobs.c.client_token.in_(list(tokens))
                    )
                )
                owners = {row.client_token: row.job_id for row in found}
            # Only a reused token (a client's retry) needs the job stored first.
            lost = [owners[t] for t, job_id in tokens.items() if owners.get(t, job_id) != job_id]
            return owners, _jobs_in(conn, lost) if lost else {}

        owners, earlier = await self.db.write(work)
        return [
            None
            if isinstance(item, _Admission)
            else earlier.get(owners.get(item.client_token or "", ""), item)
            if item.client_token
            else item
            for item in items
        ]

    async def job(self, job_id: str) -> ServiceJob | None:
        found = await self.db.read_by_key(
            lambda conn: conn.execute(_BY_IDS, {"ids": [job_id]}).one_or_none()
        )
        return None if found is None else _job(found.doc, found.status)

    async def jobs(self, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
        """Many jobs by id, in chunks that stay under every driver's parameter limit."""
        ids = list(job_ids)
        return await self.db.read(lambda conn: _jobs_in(conn, ids))

    async def job_document(self, job_id: str) -> dict[str, Any] | None:
        """A job as stored, wire-keyed: what Describe serializes, without building objects."""
        return await self._documents.submit(job_id)

    async def _read_documents(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        unique = list(dict.fromkeys(job_ids))

        found = await self.db.read_by_key(lambda conn: _rows_by_id(conn, unique))
        return [_document(*found[i]) if i in found else None for i in job_ids]

    async def job_by_token(self, token: str) -> ServiceJob | None:
        stmt = select(jobs.c.status, jobs.c.doc).where(jobs.c.client_token == token)
        row = await self.db.read(lambda conn: conn.execute(stmt).one_or_none())
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
        rows = await self.db.read(lambda conn: conn.execute(stmt).all())
        return [_document(row.doc, row.status) for row in rows]

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
        if not changed and not trained:
            await self._submits.submit(_Admission(list(admitted)))
            return
        admitted = list(admitted)
        changes = [
            {"k_id": j.job_id, "k_status": j.status.value, "k_doc": _dump(j)} for j in changed
        ]
        training_rows = [_training_row(r) for r in trained]

        def work(conn: Connection) -> None:
            _admit(conn, admitted)
            if changes:  # one executemany, not a statement per job
                conn.execute(_UPDATE_JOB, changes)
            if training_rows:
                _save_training_jobs(conn, training_rows)

        await self.db.write(work)

    async def training_job(self, name: str) -> TrainingJob | None:
        stmt = select(training_jobs.c.doc).where(training_jobs.c.name == name)
        doc = await self.db.read(lambda conn: conn.execute(stmt).scalar_one_or_none())
        return None if doc is None else from_wire(TrainingJob, jsontext.loads(doc))

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
        docs = await self.db.read(lambda conn: list(conn.execute(stmt).scalars()))
        return [from_wire(TrainingJob, jsontext.loads(doc)) for doc in docs]

    async def active_jobs(self) -> list[ServiceJob]:
        return [job async for job in self.stream_active_jobs()]

    async def stream_active_jobs(self, queue: str | None = None) -> AsyncIterator[ServiceJob]:
        """Every non-terminal job in submission order, read in chunks so a million never sit
        in memory at once. Each status is read along its (status, seq) index and the
        statuses are merged by seq, which needs no sort in the database."""
        heads: dict[str, deque[tuple[int, str]]] = {}
        for status in _ACTIVE:
            heads[status] = deque(await self._active_chunk(status, -1, queue))
        while True:
            live = [(rows[0][0], status) for status, rows in heads.items() if rows]
            if not live:
                return
            _, status = min(live)
            rows = heads[status]
            seq, doc = rows.popleft()
            yield _job(doc, status)
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
        rows = await self.db.read(lambda conn: conn.execute(stmt).all())
        return [(row.seq, row.doc) for row in rows]

    async def active_job_ids(self, queue: str, quota_share: str | None = None) -> list[str]:
        stmt = select(jobs.c.job_id).where(jobs.c.queue == queue, jobs.c.status.in_(_ACTIVE))
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        return await self.db.read(lambda conn: list(conn.execute(stmt).scalars()))

    async def active_in(self, *, queue: str, quota_share: str | None = None) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status.in_(_ACTIVE))
        if quota_share is not None:
            stmt = stmt.where(jobs.c.quota_share_name == quota_share)
        return int(await self.db.read(lambda conn: conn.execute(stmt).scalar_one()))

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
        found = await self.db.read(lambda conn: list(conn.execute(stmt).scalars()))
        return {s for s in found if s is not None}

    async def retire_queue(self, queue: str, suffix: str) -> None:
        """Detach a deleted queue's jobs from its name, so a new queue of that name starts
        empty; the jobs keep their ARNs and stay describable."""
        stmt = update(jobs).where(jobs.c.queue == queue).values(queue=f"{queue}{suffix}")
        await self.db.write(lambda conn: conn.execute(stmt))

    async def count_jobs(self, *, queue: str, status: str) -> int:
        stmt = select(func.count()).where(jobs.c.queue == queue, jobs.c.status == status)
        return int(await self.db.read(lambda conn: conn.execute(stmt).scalar_one()))

    async def submitted_in(self, queue: str) -> int:
        """About how many jobs of ``queue`` await admission, for the submit limit on a replica
        that does not schedule: counted in the database at most once a second, plus this
        process's own submits since (a count per submit doubled a follower's cost)."""
        now = time.monotonic()
        entry = self._waiting.get(queue)
        if entry is None or entry[0] <= now:
            count = await self.count_jobs(queue=queue, status=JobStatus.SUBMITTED.value)
            entry = self._waiting[queue] = [now + _RESOURCE_TTL_SECONDS, count]
        return int(entry[1])

    # -- requests from follower replicas to the scheduling leader ---------------------------

    async def request(self, kind: str, job_id: str | None, body: dict[str, Any]) -> None:
        stmt = insert(job_requests).values(kind=kind, job_id=job_id, body=json.dumps(body))
        await self.db.write(lambda conn: conn.execute(stmt))

    async def take_requests(self, limit: int = 1000) -> list[tuple[str, str | None, Any]]:
        """The oldest requests, removed as they are read (the leader applies them at once)."""
        probe = select(job_requests.c.id).limit(1)
        # Usually there are none: find that out without taking the write lock.
        if await self.db.read(lambda conn: conn.execute(probe).first()) is None:
            return []

        def work(conn: Connection) -> list[Any]:
            stmt = select(job_requests).order_by(job_requests.c.id).limit(limit)
            rows = conn.execute(stmt).all()
            if rows:  # exactly the rows read: ids can commit out of order on PostgreSQL
                conn.execute(
                    delete(job_requests).where(job_requests.c.id.in_([r.id for r in rows]))
                )
            return list(rows)

        rows = await self.db.write(work)
        return [(row.kind, row.job_id, json.loads(row.body)) for row in rows]

    async def submitted_job_ids(self, limit: int = 10_000) -> list[str]:
        """Jobs awaiting admission, oldest first, by id."""
        stmt = (
            select(jobs.c.job_id)
            .where(jobs.c.status == JobStatus.SUBMITTED.value)
            .order_by(jobs.c.seq)
            .limit(limit)
        )
        return await self.db.read(lambda conn: list(conn.execute(stmt).scalars()))

    async def max_seq(self) -> int:
        stmt = select(func.max(jobs.c.seq))
        return int(await self.db.read(lambda conn: conn.execute(stmt).scalar_one()) or 0)


@dataclass(frozen=True)
class _Admission:
    """Jobs to move from SUBMITTED to RUNNABLE, written with the next batch of submits."""

    job_ids: list[str]


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


def _rows_by_id(conn: Connection, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(doc, status) of each stored job, read in chunks under every driver's parameter limit."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(job_ids), 500):
        rows = conn.execute(_BY_IDS, {"ids": list(job_ids[start : start + 500])})
        found.update({job_id: (doc, status) for job_id, status, doc in rows})
    return found


def _jobs_in(conn: Connection, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
    return {job_id: _job(*row) for job_id, row in _rows_by_id(conn, job_ids).items()}


def _admit(conn: Connection, job_ids: list[str]) -> None:
    for start in range(0, len(job_ids), 500):
        conn.execute(_ADMIT, {"ids": job_ids[start : start + 500]})


def _training_row(record: TrainingJob) -> dict[str, Any]:
    return {
        "name": record.training_job_name,
        "job_id": record.job_id,
        "created_at": record.creation_time,
        "status": record.training_job_status,
        "doc": _dump(record),
    }


def _save_training_jobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the new training jobs of ``rows`` and update the known ones."""
    names = [row["name"] for row in rows]
    stmt = select(training_jobs.c.name).where(training_jobs.c.name.in_(names))
    existing = set(conn.execute(stmt).scalars())
    inserts = [row for row in rows if row["name"] not in existing]
    updates = [
        {"k_name": row["name"], "k_status": row["status"], "k_doc": row["doc"]}
        for row in rows
        if row["name"] in existing
    ]
    if inserts:
        conn.execute(insert(training_jobs), inserts)
    if updates:
        conn.execute(_UPDATE_TRAINING_JOB, updates)
