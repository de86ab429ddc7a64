"""Rows and documents shared by the repositories: one object's JSON, one job's row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from batchd import jsontext
from batchd.domain.codec import from_wire, to_wire
from batchd.domain.jobs import ServiceJob
from batchd.domain.status import ACTIVE
from batchd.storage.schema import jobs

__all__ = ["ACTIVE_STATUSES", "BY_IDS", "dump", "job_of", "job_row", "jobs_in", "rows_by_id"]

ACTIVE_STATUSES = [s.value for s in ACTIVE]

# Built once: composing a statement costs more than SQLite takes to run a key lookup.
BY_IDS = select(jobs.c.job_id, jobs.c.status, jobs.c.doc).where(
    jobs.c.job_id.in_(bindparam("ids", expanding=True))
)


def dump(obj: object) -> str:
    return jsontext.dumps_text(to_wire(obj))


def job_of(doc: str, status: str | None = None) -> ServiceJob:
    data = jsontext.loads(doc)
    if status is not None:
        # The column is authoritative: admission flips many statuses without rewriting docs.
        data["status"] = status
    return from_wire(ServiceJob, data)


def job_row(job: ServiceJob) -> dict[str, Any]:
    """The ``service_jobs`` row of ``job`` (bench loads rows through this too)."""
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
        "doc": dump(job),
    }


def rows_by_id(conn: Connection, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(doc, status) of each stored job, read in chunks under every driver's parameter limit."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(job_ids), 500):
        rows = conn.execute(BY_IDS, {"ids": list(job_ids[start : start + 500])})
        found.update({job_id: (doc, status) for job_id, status, doc in rows})
    return found


def jobs_in(conn: Connection, job_ids: Sequence[str]) -> dict[str, ServiceJob]:
    return {job_id: job_of(*row) for job_id, row in rows_by_id(conn, job_ids).items()}
