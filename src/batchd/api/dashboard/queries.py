"""The few reads the dashboard needs beyond the API's, each bounded by an index.

Counts stop at a cap (the page says "10,000+"): counting a million finished jobs on every
refresh would be the one query that grows with the store. Waiting and running jobs are
counted further than finished ones, whose exact number matters less.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from batchd import jsontext
from batchd.domain.status import JobStatus
from batchd.operations.context import Context
from batchd.storage.schema import jobs

__all__ = ["COUNT_CAP", "capped_counts", "docs", "oldest"]

COUNT_CAP = 100_000
_CAPS = {JobStatus.SUCCEEDED: 10_000, JobStatus.FAILED: 10_000}


async def capped_counts(ctx: Context, queue: str) -> dict[str, tuple[int, int]]:
    """Jobs of ``queue`` per status, each at most its cap + 1, with that cap."""
    c = jobs.c

    def work(conn: Any) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for status in JobStatus:
            cap = _CAPS.get(status, COUNT_CAP)
            inner = (
                select(c.job_id)
                .where(c.queue == queue, c.status == status.value)
                .limit(cap + 1)
                .subquery()
            )
            found = conn.execute(select(func.count()).select_from(inner)).scalar_one()
            counts[status.value] = (int(found), cap)
        return counts

    found: dict[str, tuple[int, int]] = await ctx.store.db.read(work)
    return found


def _doc(doc: str, status: str) -> dict[str, Any]:
    data: dict[str, Any] = jsontext.loads(doc)
    data["status"] = status
    return data


async def oldest(ctx: Context, queue: str, status: str) -> dict[str, Any] | None:
    """The longest-standing job of ``queue`` in ``status``, by creation (a wire document)."""
    c = jobs.c
    stmt = (
        select(c.status, c.doc)
        .where(c.queue == queue, c.status == status)
        .order_by(c.created_at, c.job_id)
        .limit(1)
    )
    row = await ctx.store.db.read(lambda conn: conn.execute(stmt).one_or_none())
    return None if row is None else _doc(row.doc, row.status)


async def docs(ctx: Context, queue: str, status: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` jobs of ``queue`` in ``status``, newest first (wire documents)."""
    c = jobs.c
    stmt = (
        select(c.status, c.doc)
        .where(c.queue == queue, c.status == status)
        .order_by(c.created_at.desc(), c.job_id.desc())
        .limit(limit)
    )
    rows = await ctx.store.db.read(lambda conn: conn.execute(stmt).all())
    return [_doc(row.doc, row.status) for row in rows]
