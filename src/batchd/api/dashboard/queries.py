"""The few reads the dashboard needs beyond the API's, each bounded by an index.

Counts stop at a cap (the page says "10,000+"): counting a million finished jobs on every
refresh would be the one query that grows with the store. Waiting and running jobs are
counted further than finished ones, whose exact number matters less.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select, tuple_

from batchd import jsontext
from batchd.domain.status import JobStatus
from batchd.operations.context import Context
from batchd.storage.job_reads import JobQuery
from batchd.storage.schema import jobs

__all__ = ["COUNT_CAP", "capped_counts", "docs", "name_prefix_page", "oldest"]

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


_NARROW = 5000


async def name_prefix_page(ctx: Context, query: JobQuery) -> list[dict[str, Any]]:
    """JobReads.page for a name prefix, without reading the whole queue.

    A LIKE prefix uses no index in SQLite (its LIKE folds case), so this adds the same prefix
    as a range on the (queue, job_name_lower) index. When at most a few thousand names match,
    they are read along that index and sorted; when more match, they are dense enough that the
    newest-first walk of the queue finds a page of them soon.
    """
    c = jobs.c
    assert query.name is not None
    prefix = query.name
    conditions: list[Any] = [
        c.queue == query.queue,
        c.job_name_lower >= prefix,
        c.job_name_lower < prefix + "\U0010ffff",
        c.job_name_lower.startswith(prefix, autoescape=True),
    ]
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
    matching = select(c.job_id).where(*conditions[:4]).limit(_NARROW + 1).subquery()
    stmt = (
        select(c.status, c.doc)
        .where(and_(*conditions))
        .order_by(c.created_at.desc(), c.job_id.desc())
        .limit(query.limit)
    )

    def work(conn: Any) -> list[Any]:
        narrow = conn.execute(select(func.count()).select_from(matching)).scalar_one()
        chosen = stmt
        if narrow <= _NARROW:
            chosen = stmt.with_hint(jobs, "INDEXED BY ix_jobs_queue_name", "sqlite")
        return list(conn.execute(chosen).all())

    rows = await ctx.store.db.read(work)
    return [_doc(row.doc, row.status) for row in rows]
