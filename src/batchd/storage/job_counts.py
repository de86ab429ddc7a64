"""Jobs counted by (queue, status) in one GROUP BY, for ``GET /metrics``.

The ``(queue, status, ...)`` index answers it without reading a job's document: an index-only
scan, the same in every process and replica, since it reads the shared store.
"""

from __future__ import annotations

from sqlalchemy import func, select

from batchd import jsontext
from batchd.domain.status import DISPATCHED
from batchd.storage.database import Database
from batchd.storage.schema import jobs, leadership

__all__ = ["capacity_in_use", "job_counts", "leader"]

_DISPATCHED = [s.value for s in DISPATCHED]


async def job_counts(db: Database) -> dict[tuple[str, str], int]:
    stmt = select(jobs.c.queue, jobs.c.status, func.count()).group_by(jobs.c.queue, jobs.c.status)
    rows = await db.read(lambda conn: conn.execute(stmt).all())
    return {(row[0], row[1]): int(row[2]) for row in rows}


async def capacity_in_use(db: Database) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Instances held by dispatched jobs, by service environment and by (queue, share): as
    many jobs as capacity allows, read along the status index."""
    stmt = select(jobs.c.queue, jobs.c.doc).where(jobs.c.status.in_(_DISPATCHED))
    rows = await db.read(lambda conn: conn.execute(stmt).all())
    by_env: dict[str, int] = {}
    by_share: dict[tuple[str, str], int] = {}
    for queue, doc in rows:
        job = jsontext.loads(doc)
        held = sum(int(u.get("quantity", 0)) for u in job.get("capacityUsage") or ())
        environment = (job.get("current") or {}).get("environment")
        if environment:
            by_env[environment] = by_env.get(environment, 0) + held
        share = job.get("shareIdentifier") or job.get("quotaShareName")
        if share:
            by_share[(queue, share)] = by_share.get((queue, share), 0) + held
    return by_env, by_share


async def leader(db: Database) -> str | None:
    """The replica that schedules (``host:pid``), as the leadership row says."""
    stmt = select(leadership.c.holder).where(leadership.c.id == 1)
    found: str | None = await db.read(lambda conn: conn.execute(stmt).scalar_one_or_none())
    return found
