"""Writes of service jobs: submits in group commits, the runtime's saves, a deleted queue's jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from batchd.domain.jobs import ServiceJob
from batchd.domain.status import JobStatus
from batchd.domain.training import TrainingJob
from batchd.storage.batching import Batcher
from batchd.storage.cache import TtlCache
from batchd.storage.database import Database
from batchd.storage.dialects import execute_rows, insert_new_rows, notify_work
from batchd.storage.lease import check
from batchd.storage.mailbox import remove_mail
from batchd.storage.rows import dump, job_row, jobs_in
from batchd.storage.schema import jobs
from batchd.storage.training_jobs import save_training_jobs, training_row

__all__ = ["JobWrites"]

_UPDATE_JOB = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("k_id"))
    .values(status=bindparam("k_status"), doc=bindparam("k_doc"))
)
_ADMIT = (
    update(jobs)
    .where(jobs.c.job_id.in_(bindparam("ids", expanding=True)))
    .where(jobs.c.status == JobStatus.SUBMITTED.value)
    .values(status=JobStatus.RUNNABLE.value)
)

_ADMIT_ONE = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("k_id"))
    .where(jobs.c.status == JobStatus.SUBMITTED.value)
    .values(status=JobStatus.RUNNABLE.value)
)


@dataclass(frozen=True)
class _Admission:
    """Jobs to move from SUBMITTED to RUNNABLE, written with the next batch of submits."""

    job_ids: list[str]


class JobWrites:
    def __init__(self, db: Database, waiting: TtlCache[str, int]) -> None:
        self._db = db
        # Concurrent submits share one commit.
        self._submits: Batcher[ServiceJob | _Admission, ServiceJob | None] = Batcher(self._insert)
        self._waiting = waiting  # queue -> SUBMITTED count, shared with JobReads.submitted_in

    async def submit(self, job: ServiceJob) -> ServiceJob:
        """Store a new job durably; with a reused client token, the job stored first."""
        if self._db.scratch:  # one caller, who waits: no one to share a commit with
            [stored] = await self._insert([job])
        else:
            stored = await self._submits.submit(job)
        assert stored is not None
        if stored is job:
            self._waiting.update(job.queue_name, _plus_one)
        return stored

    async def _insert(self, items: list[ServiceJob | _Admission]) -> list[ServiceJob | None]:
        """New jobs, and admissions riding along in the same commit.

        While jobs are being submitted the scheduler's admissions (SUBMITTED -> RUNNABLE) join
        the next submit commit instead of paying an fsync of their own; with several workers
        on one SQLite file, every commit also waits for the others' to finish.
        """
        batch = [item for item in items if isinstance(item, ServiceJob)]
        admitted = [i for item in items if isinstance(item, _Admission) for i in item.job_ids]
        rows = [job_row(job) for job in batch]
        tokens = {job.client_token: job.job_id for job in batch if job.client_token}

        def work(conn: Connection) -> tuple[dict[str, str], dict[str, ServiceJob]]:
            _admit(conn, admitted)
            inserted = insert_new_rows(conn, jobs, rows) if rows else 0
            if inserted:
                notify_work(conn)
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
            return owners, jobs_in(conn, lost) if lost else {}

        owners, earlier = await self._db.write(work)
        return [
            None
            if isinstance(item, _Admission)
            else earlier.get(owners.get(item.client_token or "", ""), item)
            if item.client_token
            else item
            for item in items
        ]

    async def save(
        self,
        changed: Sequence[ServiceJob],
        trained: Sequence[TrainingJob] = (),
        admitted: Sequence[str] = (),
        done_mail: Sequence[int] = (),
        epoch: int | None = None,
    ) -> None:
        """Write jobs' new state, their training jobs and admissions, in one transaction.

        ``admitted`` jobs only move from SUBMITTED to RUNNABLE: one statement for all of them.
        ``done_mail``: follower requests whose effect this is, removed in the same transaction
        so that a request is never lost between being read and taking effect. ``epoch``: the
        scheduling leader's; the write lands only while it still leads (else ``Deposed``).
        """
        if not changed and not trained and not admitted and not done_mail:
            return
        if not changed and not trained and not done_mail:
            # Admissions only flip SUBMITTED to RUNNABLE, which any leader would do: they ride
            # along with submits, unfenced.
            if self._db.scratch:
                await self._insert([_Admission(list(admitted))])
            else:
                await self._submits.submit(_Admission(list(admitted)))
            return
        admitted = list(admitted)
        changes = [
            {"k_id": j.job_id, "k_status": j.status.value, "k_doc": dump(j)} for j in changed
        ]
        training_rows = [training_row(r) for r in trained]

        # Fencing guards against another leader, which a scratch database cannot have.
        fenced = epoch is not None and not self._db.scratch

        def work(conn: Connection) -> None:
            if fenced:
                assert epoch is not None
                check(conn, epoch)
            _admit(conn, admitted)
            if changes:  # one executemany, not a statement per job
                execute_rows(conn, _UPDATE_JOB, changes)
            if training_rows:
                save_training_jobs(conn, training_rows)
            if done_mail:
                remove_mail(conn, done_mail)

        await self._db.write(work)


def _plus_one(count: int) -> int:
    return count + 1


def _admit(conn: Connection, job_ids: list[str]) -> None:
    if conn.dialect.name == "sqlite":  # no round trips to save: a key update each, no IN
        execute_rows(conn, _ADMIT_ONE, [{"k_id": job_id} for job_id in job_ids])
        return
    for start in range(0, len(job_ids), 500):
        conn.execute(_ADMIT, {"ids": job_ids[start : start + 500]})
