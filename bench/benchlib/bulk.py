"""Bulk-load service jobs straight into batchd's own schema, in large transactions.

Rows are made by batchd's own code (``ServiceJob`` objects, the store's row mapping) and
inserted with SQLAlchemy Core ``executemany``, so the server that starts on the database next
sees exactly what its own submits would have stored. Loading through the API would take hours
at 1M jobs; this takes about a minute per million on SQLite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.benchlib.signed import training_payload

from batchd.domain.arns import Arns
from batchd.domain.jobs import (
    CapacityUsage,
    LatestServiceJobAttempt,
    ServiceJob,
    ServiceJobAttemptDetail,
    ServiceResourceId,
)
from batchd.domain.status import JobStatus
from batchd.storage.database import open_database
from batchd.storage.rows import job_row
from batchd.storage.schema import jobs
from batchd.storage.store import Store

__all__ = ["ARNS", "JobSpec", "load_jobs", "make_job", "migrate"]

ARNS = Arns("us-east-1", "123456789012")
START_MS = 1_700_000_000_000
_PAYLOAD = training_payload("bench", seconds=0)


@dataclass(frozen=True)
class JobSpec:
    """Where job ``i`` goes and in which state."""

    queue: Callable[[int], str]
    status: Callable[[int], JobStatus]
    share: Callable[[int], str | None] = lambda _: None
    payload: str = _PAYLOAD


def job_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def make_job(i: int, spec: JobSpec) -> ServiceJob:
    """Job number ``i``: created one millisecond after job ``i - 1``."""
    jid = job_id(i)
    created = START_MS + i
    status = spec.status(i)
    job = ServiceJob(
        job_id=jid,
        job_arn=ARNS.service_job(jid),
        job_name=f"bench-{i}",
        job_queue=ARNS.job_queue(spec.queue(i)),
        service_request_payload=spec.payload,
        created_at=created,
        seq=created * 1000 + i % 1000,
        status=status,
        capacity_usage=(CapacityUsage("ml.m5.large", 1.0),),
        share_identifier=spec.share(i),
    )
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        arn = ARNS.training_job(f"AWSBatchbench-{i}{i:032x}")
        ok = status is JobStatus.SUCCEEDED
        reason = "Succeeded" if ok else "Received status from SageMaker: AlgorithmError"
        attempt = ServiceJobAttemptDetail(
            ServiceResourceId(arn), created + 1000, created + 61_000, reason
        )
        job = dataclasses.replace(
            job,
            status_reason=reason,
            scheduled_at=created + 500,
            started_at=created + 1000,
            stopped_at=created + 61_000,
            attempts=(attempt,),
            latest_attempt=LatestServiceJobAttempt(ServiceResourceId(arn)),
        )
    return job


async def migrate(db_url: str) -> None:
    """Create batchd's schema (its own Alembic migrations), as the server does at start."""
    store = await Store.open(db_url)
    await store.close()


def _batches(count: int, spec: JobSpec, size: int, first: int) -> Iterator[list[dict[str, object]]]:
    for start in range(first, first + count, size):
        stop = min(start + size, first + count)
        yield [job_row(make_job(i, spec)) for i in range(start, stop)]


async def _load(db_url: str, count: int, spec: JobSpec, batch: int, first: int) -> None:
    db = open_database(db_url)
    try:
        for rows in _batches(count, spec, batch, first):
            await db.write(lambda conn, rows=rows: conn.execute(jobs.insert(), rows))
    finally:
        await db.close()


def load_jobs(
    db_url: str, count: int, spec: JobSpec, *, batch: int = 20_000, first: int = 1
) -> float:
    """Insert jobs ``first .. first + count - 1``; returns the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_load(db_url, count, spec, batch, first))
    return time.perf_counter() - started
