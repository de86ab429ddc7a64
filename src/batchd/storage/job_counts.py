"""Jobs counted by (queue, status) in one GROUP BY, for ``GET /metrics``.

The ``(queue, status, ...)`` index answers it without reading a job's document: an index-only
scan, the same in every process and replica, since it reads the shared store.
"""

from __future__ import annotations

from sqlalchemy import func, select

from batchd.storage.database import Database
from batchd.storage.schema import jobs

__all__ = ["job_counts"]


async def job_counts(db: Database) -> dict[tuple[str, str], int]:
    stmt = select(jobs.c.queue, jobs.c.status, func.count()).group_by(jobs.c.queue, jobs.c.status)
    rows = await db.read(lambda conn: conn.execute(stmt).all())
    return {(row[0], row[1]): int(row[2]) for row in rows}
