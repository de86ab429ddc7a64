"""Per-share series for ``GET /metrics``: what each fair share and quota share holds, may
hold, and weighs; and, from the replica that schedules, each fair share's decayed usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy
from batchd.operations.context import Context

__all__ = ["share_families"]


async def share_families(
    ctx: Context, queues: Sequence[JobQueue], used: Mapping[tuple[str, str], int]
) -> list[Metric]:
    labels = ["queue", "share"]
    held = GaugeMetricFamily(
        "batchd_share_used_instances",
        "Instances held by each fair share or quota share's dispatched jobs.",
        labels=labels,
    )
    for (owner, share_name), count in sorted(used.items()):
        held.add_metric([owner, share_name], count)
    limit = GaugeMetricFamily(
        "batchd_quota_share_limit_instances",
        "Each quota share's own capacity limit, in instances.",
        labels=labels,
    )
    borrow = GaugeMetricFamily(
        "batchd_quota_share_borrow_limit_percent",
        "How much beyond its limit each quota share may borrow (-1: no bound).",
        labels=labels,
    )
    for _, quota in await ctx.store.resources.list(QuotaShare):
        owner = quota.job_queue_arn.rsplit("/", 1)[-1]
        name = quota.quota_share_name
        limit.add_metric([owner, name], sum(c.max_capacity for c in quota.capacity_limits))
        bound = quota.resource_sharing_configuration.borrow_limit
        borrow.add_metric([owner, name], bound if bound is not None else -1)
    weight = GaugeMetricFamily(
        "batchd_fairshare_weight",
        "Each fair share's weightFactor (lower gets more).",
        labels=labels,
    )
    decayed = GaugeMetricFamily(
        "batchd_fairshare_decayed_usage",
        "Each fair share's decayed usage (instance-seconds), from the replica that schedules.",
        labels=labels,
    )
    policies = {p.arn: p for _, p in await ctx.store.resources.list(SchedulingPolicy)}
    leads = ctx.store.lease.epoch is not None
    for queue in queues:
        policy = policies.get(queue.scheduling_policy_arn or "")
        fair = policy.fairshare_policy if policy is not None else None
        if fair is None:
            continue
        name = queue.job_queue_name
        for share in fair.share_distribution:
            factor = share.weight_factor if share.weight_factor is not None else 1.0
            weight.add_metric([name, share.share_identifier], factor)
        snap = await ctx.control.snapshot(queue) if leads else None
        for share_id, usage in sorted(((snap.decayed_usage or {}) if snap else {}).items()):
            decayed.add_metric([name, share_id], usage)
    return [held, limit, borrow, weight, decayed]
