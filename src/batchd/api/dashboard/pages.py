"""What the overview and queue pages show, read through the store and the runtime's snapshot."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from batchd.api.dashboard.queries import capped_counts, docs, oldest
from batchd.domain.resources import (
    JobQueue,
    PolicyKind,
    QuotaShare,
    SchedulingPolicy,
    ServiceEnvironment,
)
from batchd.domain.status import JobStatus
from batchd.operations.context import Context
from batchd.scheduling.queue_view import CapacityUsage, QueueSnapshot

__all__ = [
    "STATUSES",
    "Bar",
    "environment_bars",
    "environment_use",
    "fits",
    "overview",
    "policy_of",
    "queue_page",
]

STATUSES = [s.value for s in JobStatus]
_RECENT = 10
_RUNNING_READ = 1000


@dataclass(frozen=True)
class Bar:
    unit: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0


@dataclass
class EnvRow:
    env: ServiceEnvironment
    bars: list[Bar] = field(default_factory=list)
    # (job queue, what its dispatched jobs hold here): who is using the capacity
    queues: list[tuple[str, str]] = field(default_factory=list)


def _env_name(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn else None


async def policy_of(ctx: Context, queue: JobQueue) -> SchedulingPolicy | None:
    if not queue.scheduling_policy_arn:
        return None
    name = ctx.arns.resource_of(queue.scheduling_policy_arn, "scheduling-policy") or ""
    return await ctx.store.resources.get(SchedulingPolicy, name)


async def _all(ctx: Context, cls: Any) -> list[Any]:
    return [obj for _, obj in await ctx.store.resources.list(cls)]


def environment_bars(
    envs: Sequence[ServiceEnvironment], queues: Sequence[JobQueue], held: dict[str, list[Any]]
) -> list[EnvRow]:
    """Each environment's limits against what its queues' dispatched jobs hold.

    A queue's jobs are counted against its first environment, where the planner places them.
    """
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = {env.service_environment_arn: EnvRow(env) for env in envs}
    for queue in queues:
        arn = queue.environment_arn
        if arn is None:
            continue
        holding = held.get(queue.job_queue_name, [])
        if arn in rows:
            text = ", ".join(f"{u.quantity} {u.unit}" for u in holding) or "nothing"
            rows[arn].queues.append((queue.job_queue_name, text))
        for usage in holding:
            used[arn][usage.unit] += usage.quantity
    for arn, row in rows.items():
        row.bars = [
            Bar(limit.capacity_unit, used[arn].get(limit.capacity_unit, 0), limit.max_capacity)
            for limit in row.env.capacity_limits
        ]
    return list(rows.values())


async def environment_use(
    ctx: Context, env_arn: str, known: dict[str, QueueSnapshot | None] | None = None
) -> dict[str, int]:
    """What the dispatched jobs of every queue placed on ``env_arn`` hold, per unit.

    ``known`` holds snapshots the caller already took, by queue name: a follower replica
    builds each one from the store.
    """
    used: dict[str, int] = defaultdict(int)
    queues: list[JobQueue] = await _all(ctx, JobQueue)
    for queue in queues:
        if queue.environment_arn == env_arn:
            name = queue.job_queue_name
            if known is not None and name in known:
                snap = known[name]
            else:
                snap = await ctx.control.snapshot(queue)
            for usage in snap.utilization.total if snap else ():
                used[usage.unit] += usage.quantity
    return dict(used)


def fits(env: ServiceEnvironment, used: dict[str, int], demand: dict[str, int]) -> bool:
    limits = {c.capacity_unit: c.max_capacity for c in env.capacity_limits}
    return all(used.get(u, 0) + n <= limits[u] for u, n in demand.items() if u in limits)


async def overview(ctx: Context) -> dict[str, Any]:
    envs = await _all(ctx, ServiceEnvironment)
    queues: list[JobQueue] = await _all(ctx, JobQueue)
    held: dict[str, list[CapacityUsage]] = {}
    rows = []
    failures: list[dict[str, Any]] = []
    for queue in queues:
        name = queue.job_queue_name
        snap = await ctx.control.snapshot(queue)
        held[name] = list(snap.utilization.total) if snap else []
        running = await docs(ctx, name, JobStatus.RUNNING.value, _RUNNING_READ)
        started = [d for d in running if d.get("startedAt")]
        rows.append(
            {
                "queue": queue,
                "counts": await capped_counts(ctx, name),
                "oldest_runnable": await oldest(ctx, name, JobStatus.RUNNABLE.value),
                "longest_running": min(started, key=lambda d: d["startedAt"], default=None),
            }
        )
        failures.extend(await docs(ctx, name, JobStatus.FAILED.value, _RECENT))
    failures.sort(key=lambda d: -(d.get("stoppedAt") or d["createdAt"]))
    return {
        "environments": environment_bars(envs, queues, held),
        "queues": rows,
        "statuses": STATUSES,
        "failures": failures[:_RECENT],
        "preemptions": await _preemptions(ctx, ctx.clock.now_ms()),
    }


async def _preemptions(ctx: Context, now: int) -> list[dict[str, Any]]:
    """The last day's preempted attempts, newest first: stopped training jobs whose service
    job records them as preempted."""
    stopped = await ctx.store.training_jobs.page(
        limit=200, status="Stopped", created_after=now - 86_400_000
    )
    owners = await ctx.store.job_reads.get_many(sorted({t.job_id for t in stopped}))
    found: list[dict[str, Any]] = []
    for record in stopped:
        job = owners.get(record.job_id)
        summary = job.preemption_summary if job else None
        for attempt in summary.recent_preempted_attempts if summary else ():
            if job is not None and attempt.service_resource_id.value == record.training_job_arn:
                found.append({"job": job, "attempt": attempt})
    found.sort(key=lambda f: -int(f["attempt"].stopped_at or 0))
    return found[:_RECENT]


async def queue_page(ctx: Context, queue: JobQueue) -> dict[str, Any]:
    name = queue.job_queue_name
    policy = await policy_of(ctx, queue)
    kind = policy.kind if policy else PolicyKind.FIFO
    snap = await ctx.control.snapshot(queue)
    front = snap.front if snap else []
    # Wire documents, read together in one query, without building job objects.
    front_docs = await asyncio.gather(*(ctx.store.job_reads.document(p.job_id) for p in front))
    env_name = _env_name(queue.environment_arn)
    env = await ctx.store.resources.get(ServiceEnvironment, env_name) if env_name else None
    return {
        "queue": queue,
        "kind": kind.value,
        "policy": policy,
        "environment": env,
        "snapshot": snap,
        "front": [(i, p, doc) for i, (p, doc) in enumerate(zip(front, front_docs, strict=True))],
        "counts": await capped_counts(ctx, name),
        "statuses": STATUSES,
        "fair_shares": _fair_shares(policy, snap) if kind == PolicyKind.FAIRSHARE else [],
        "quota_shares": await _quota_shares(ctx, name, snap) if kind == PolicyKind.QUOTA else [],
    }


def _fair_shares(policy: SchedulingPolicy | None, snap: QueueSnapshot | None) -> list[Any]:
    weights: dict[str, float] = {}
    if policy and policy.fairshare_policy:
        for attributes in policy.fairshare_policy.share_distribution:
            weights[attributes.share_identifier] = attributes.weight_factor or 1.0
    held: dict[str, int] = {}
    if snap and snap.utilization.fairshare:
        for using in snap.utilization.fairshare.top:
            held[using.name] = sum(u.quantity for u in using.usage)
    decayed = (snap.decayed_usage or {}) if snap else {}
    names = sorted(set(weights) | set(held) | set(decayed))
    return [
        {
            "name": n,
            "weight": weights.get(n, 1.0),
            "held": held.get(n, 0),
            "decayed": decayed.get(n, 0.0),
        }
        for n in names
    ]


async def _quota_shares(ctx: Context, queue: str, snap: QueueSnapshot | None) -> list[Any]:
    """Each share's limit, use, borrowing and lending, per capacity unit.

    Borrowed is what a share holds beyond its limit. What the borrowers hold of a unit is
    counted as lent by the lending shares with room, in share order.
    """
    shares: list[QuotaShare] = [
        s for _, s in await ctx.store.resources.list(QuotaShare, prefix=f"{queue}/")
    ]
    held: dict[str, dict[str, int]] = {}
    for using in snap.utilization.quota_shares or () if snap else ():
        held[using.name] = {u.unit: u.quantity for u in using.usage}
    rows = []
    borrowed_total: dict[str, int] = defaultdict(int)
    for share in shares:
        for limit in share.capacity_limits:
            used = held.get(share.quota_share_name, {}).get(limit.capacity_unit, 0)
            borrowed_total[limit.capacity_unit] += max(0, used - limit.max_capacity)
    for share in shares:
        sharing = share.resource_sharing_configuration
        lends = sharing.strategy != "RESERVE"
        for limit in share.capacity_limits:
            unit = limit.capacity_unit
            used = held.get(share.quota_share_name, {}).get(unit, 0)
            idle = max(0, limit.max_capacity - used)
            lent = min(idle, borrowed_total[unit]) if lends else 0
            borrowed_total[unit] -= lent
            rows.append(
                {
                    "share": share,
                    "unit": unit,
                    "limit": limit.max_capacity,
                    "used": used,
                    "borrowed": max(0, used - limit.max_capacity),
                    "lent": lent,
                    "strategy": sharing.strategy,
                    "borrow_limit": sharing.borrow_limit,
                }
            )
    return rows
