"""The jobs list (filtered, keyset-paged) and one job's page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchd.api.dashboard.explain import Blocker, WaitFacts, explain_wait
from batchd.api.dashboard.pages import STATUSES, environment_use, fits, policy_of
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue, PolicyKind, ServiceEnvironment
from batchd.errors import InvalidParameter
from batchd.operations.context import Context
from batchd.storage.job_reads import JobQuery

__all__ = [
    "JobFilter",
    "job_page",
    "jobs_page",
    "log_tail",
    "parse_filter",
    "waiting_of",
]

PAGE = 50
_CURSOR = re.compile(r"^([0-9]{1,19})~([0-9A-Za-z-]{1,36})$")
_TAIL = 64 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class JobFilter:
    queue: str | None = None
    statuses: tuple[str, ...] = ()
    share: str | None = None
    name: str | None = None  # a prefix, case-insensitive
    since: str | None = None  # datetime-local text, UTC
    until: str | None = None
    cursor: tuple[int, str] | None = None  # (createdAt, jobId) of the last row shown
    # The first page as first seen: jobs created up to this time only, so that refreshing it
    # does not push its rows down as new jobs arrive.
    anchor: int | None = None

    def query(self, extra: Mapping[str, str] | None = None) -> str:
        """The filter as a query string, for links that keep it."""
        pairs = [("queue", self.queue), ("share", self.share), ("name", self.name)]
        pairs += [("since", self.since), ("until", self.until)]
        items = [(k, v) for k, v in pairs if v] + [("status", s) for s in self.statuses]
        items += list((extra or {}).items())
        from urllib.parse import urlencode

        return urlencode(items)


def _ms(field: str, text: str | None) -> int | None:
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError as err:
        raise InvalidParameter(f"{field} must be a date and time like 2026-01-31T12:00") from err
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)


def parse_filter(query: Sequence[tuple[str, str]]) -> JobFilter:
    values: dict[str, str] = {k: v.strip() for k, v in query if v.strip()}
    statuses = tuple(dict.fromkeys(v for k, v in query if k == "status" and v))
    for status in statuses:
        if status not in STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    anchor = values.get("anchor")
    if anchor is not None and not (anchor.isdigit() and len(anchor) < 19):
        raise InvalidParameter("anchor must be a time in epoch milliseconds")
    cursor = None
    if "cursor" in values:
        found = _CURSOR.match(values["cursor"])
        if found is None:
            raise InvalidParameter("cursor is not one this page made")
        cursor = (int(found[1]), found[2])
    found_filter = JobFilter(
        queue=values.get("queue"),
        statuses=statuses,
        share=values.get("share"),
        name=values.get("name"),
        since=values.get("since"),
        until=values.get("until"),
        cursor=cursor,
        anchor=int(anchor) if anchor is not None else None,
    )
    _ms("since", found_filter.since)
    _ms("until", found_filter.until)
    return found_filter


async def jobs_page(ctx: Context, flt: JobFilter) -> dict[str, Any]:
    """One page, newest first by (createdAt, jobId): each queue is read along its own index
    from the cursor on, and the queues' pages are merged, so no page reads more than
    PAGE + 1 rows per queue however many jobs are stored."""
    queues: list[JobQueue] = [q for _, q in await ctx.store.resources.list(JobQueue)]
    chosen = [q for q in queues if flt.queue in (None, q.job_queue_name)]
    if flt.queue and not chosen:
        raise InvalidParameter(f"queue: job queue {flt.queue} does not exist")
    before = _ms("until", flt.until)
    if flt.anchor is not None and flt.cursor is None:
        before = min(before or flt.anchor + 1, flt.anchor + 1)
    pages = []
    for queue in chosen:
        query = JobQuery(
            queue=queue.job_queue_name,
            limit=PAGE + 1,
            statuses=flt.statuses or None,
            name=flt.name.lower() if flt.name else None,
            name_prefix=True,
            created_after=_ms("since", flt.since),
            created_before=before,
            after=flt.cursor,
        )
        if flt.share:
            policy = await policy_of(ctx, queue)
            if policy is not None and policy.kind == PolicyKind.QUOTA:
                query = dataclasses.replace(query, quota_share_name=flt.share)
            else:
                query = dataclasses.replace(query, share_identifier=flt.share)
        pages.append(await ctx.store.job_reads.page(query))
    merged = heapq.merge(*pages, key=lambda d: (-d["createdAt"], _desc(d["jobId"])))
    rows = [row for _, row in zip(range(PAGE + 1), merged, strict=False)]
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    following = None
    if more:
        last = rows[-1]
        following = flt.query({"cursor": f"{last['createdAt']}~{last['jobId']}"})
    return {
        "rows": rows,
        "filter": flt,
        "queues": [q.job_queue_name for q in queues],
        "statuses": STATUSES,
        "next": following,
        "first": flt.query() if flt.cursor or flt.anchor else None,
        # What the page polls: the first page stays anchored at its newest row.
        "live_url": _live_url(flt, rows),
    }


def _live_url(flt: JobFilter, rows: list[dict[str, Any]]) -> str | None:
    if flt.cursor is not None or flt.anchor is not None or not rows:
        return None
    return "/jobs?" + flt.query({"anchor": str(rows[0]["createdAt"])})


def _desc(text: str) -> tuple[int, ...]:
    # Descending order on a string, as a key heapq.merge can sort ascending.
    return (*(-ord(ch) for ch in text), 1)


async def job_page(ctx: Context, job: ServiceJob) -> dict[str, Any]:
    queue = await ctx.store.resources.get(JobQueue, job.queue_name)
    training = []
    names = [a.service_resource_id.value.rsplit("/", 1)[-1] for a in job.attempts]
    if job.current is not None:
        names.append(job.current.training_job_name)
    for name in names:
        training.append(await ctx.store.training_jobs.get(name))
    waiting = await waiting_of(ctx, job, queue) if queue is not None else None
    return {
        "job": job,
        "queue": queue,
        "training": dict(zip(names, training, strict=True)),
        "waiting": waiting,
    }


def _demand(job: ServiceJob) -> str:
    return ", ".join(f"{int(c.quantity)} x {c.capacity_unit}" for c in job.capacity_usage)


async def waiting_of(ctx: Context, job: ServiceJob, queue: JobQueue) -> dict[str, Any] | None:
    if job.terminal:
        return None
    policy = await policy_of(ctx, queue)
    kind = policy.kind if policy else PolicyKind.FIFO
    env_name = (queue.environment_arn or "").rsplit("/", 1)[-1] or None
    env = await ctx.store.resources.get(ServiceEnvironment, env_name) if env_name else None
    snap = await ctx.control.snapshot(queue)
    front = snap.front if snap else []
    ids = [p.job_id for p in front]
    position = ids.index(job.job_id) if job.job_id in ids else None
    head = await ctx.store.job_reads.get(ids[0]) if ids and ids[0] != job.job_id else None
    share = job.share_identifier or job.quota_share_name
    share_position = None
    if position is not None and share is not None:
        ahead = await ctx.store.job_reads.get_many(ids[:position])
        share_position = sum(
            1 for j in ahead.values() if share in (j.share_identifier, j.quota_share_name)
        )
    used, job_fits, head_fits = "", None, None
    if env is not None:
        held = await environment_use(ctx, env.service_environment_arn, {queue.job_queue_name: snap})
        used = ", ".join(
            f"{held.get(c.capacity_unit, 0)} of {c.max_capacity} {c.capacity_unit} in use"
            for c in env.capacity_limits
        )
        job_fits = fits(env, held, job.demand)
        head_fits = fits(env, held, head.demand) if head else None
    facts = WaitFacts(
        status=job.status.value,
        status_reason=job.status_reason,
        queue_kind=kind.value,
        queue_enabled=queue.state == "ENABLED",
        environment=env_name,
        environment_usable=env is not None and env.usable,
        position=position,
        front_size=len(front),
        head_job=head.job_name + f" ({head.job_id})" if head else None,
        head_reason=head.status_reason if head else None,
        share=share,
        demand=_demand(job),
        used=used,
        fits=job_fits,
        head_fits=head_fits,
        head_demand=_demand(head) if head else "",
    )
    blocker: Blocker | None = explain_wait(facts)
    return {
        "blocker": blocker,
        "position": position,
        "time_at_position": front[position].earliest_time_at_position
        if position is not None
        else None,
        "share": share,
        "share_position": share_position,
        "head": head,
        "kind": kind.value,
    }


async def log_hosts(ctx: Context, job: ServiceJob) -> tuple[str | None, list[str]]:
    """The latest training job's name and its hosts' log streams."""
    name, backend = _latest_run(job)
    if name is None:
        return None, []
    return name, list(await ctx.logs.log_hosts(name, backend))


def _latest_run(job: ServiceJob) -> tuple[str | None, str | None]:
    if job.current is not None:
        return job.current.training_job_name, job.current.backend
    if job.attempts:
        return job.attempts[-1].service_resource_id.value.rsplit("/", 1)[-1], None
    return None, None


async def log_tail(ctx: Context, job: ServiceJob, host: str, offset: int | None) -> tuple[str, int]:
    """New output of ``host`` from ``offset`` on; with no offset, the last 64 KiB so far."""
    name, backend = _latest_run(job)
    if name is None:
        return "", 0
    start = offset or 0
    parts: list[bytes] = []
    while True:
        chunk = await ctx.logs.read_log(name, backend, host, start, _CHUNK)
        parts.append(chunk)
        start += len(chunk)
        if len(chunk) < _CHUNK:
            break
    body = b"".join(parts)
    if offset is None and len(body) > _TAIL:
        body = body[-_TAIL:]
        body = body[body.find(b"\n") + 1 :]
    return body.decode("utf-8", "replace"), start
