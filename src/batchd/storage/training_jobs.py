"""Training jobs, one per dispatch: what the SageMaker facade reads and lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from batchd import jsontext
from batchd.domain.codec import from_wire
from batchd.domain.training import TrainingJob
from batchd.storage.database import Database
from batchd.storage.rows import dump
from batchd.storage.schema import training_jobs

__all__ = ["TrainingJobs", "save_training_jobs", "training_row"]

_UPDATE_TRAINING_JOB = (
    update(training_jobs)
    .where(training_jobs.c.name == bindparam("k_name"))
    .values(status=bindparam("k_status"), doc=bindparam("k_doc"))
)


class TrainingJobs:
    """Reads; the runtime writes training jobs with the jobs they belong to (JobWrites.save)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> TrainingJob | None:
        stmt = select(training_jobs.c.doc).where(training_jobs.c.name == name)
        doc = await self._db.read(lambda conn: conn.execute(stmt).scalar_one_or_none())
        return None if doc is None else from_wire(TrainingJob, jsontext.loads(doc))

    async def page(
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
        docs = await self._db.read(lambda conn: list(conn.execute(stmt).scalars()))
        return [from_wire(TrainingJob, jsontext.loads(doc)) for doc in docs]

    async def by_name(
        self, *, prefix: str, from_name: str | None, descending: bool, limit: int
    ) -> list[TrainingJob]:
        """Names starting with ``prefix``, in name order from ``from_name`` (inclusive), on
        the primary key: the CloudWatch Logs facade lists log streams with it."""
        c = training_jobs.c
        stmt = select(c.doc)
        if prefix:
            stmt = stmt.where(c.name.startswith(prefix, autoescape=True))
        if from_name is not None:
            stmt = stmt.where(c.name <= from_name if descending else c.name >= from_name)
        order = c.name.desc() if descending else c.name.asc()
        stmt = stmt.order_by(order).limit(limit)
        docs = await self._db.read(lambda conn: conn.execute(stmt).scalars().all())
        return [from_wire(TrainingJob, jsontext.loads(doc)) for doc in docs]


def training_row(record: TrainingJob) -> dict[str, Any]:
    return {
        "name": record.training_job_name,
        "job_id": record.job_id,
        "created_at": record.creation_time,
        "status": record.training_job_status,
        "doc": dump(record),
    }


def save_training_jobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
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
