"""Scheduling policies: Create / Update / Describe / List / Delete."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchd.domain.codec import from_wire
from batchd.domain.resources import (
    FairsharePolicy,
    JobQueue,
    PolicyKind,
    QuotaSharePolicy,
    SchedulingPolicy,
)
from batchd.errors import Conflict, InvalidParameter, NotFound
from batchd.operations.common import check_tags, described, find_policy, page_of
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation


def _fairshare(raw: dict[str, Any]) -> FairsharePolicy:
    policy = from_wire(FairsharePolicy, raw)
    ids = [s.share_identifier for s in policy.share_distribution]
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if _overlap(a, b):
                raise InvalidParameter(
                    f"fairsharePolicy.shareDistribution: share identifiers {a} and {b} overlap"
                )
    return policy


def _overlap(a: str, b: str) -> bool:
    def covers(pattern: str, other: str) -> bool:
        if pattern.endswith("*"):
            return other.rstrip("*").startswith(pattern[:-1])
        return pattern == other

    return covers(a, b) or covers(b, a)


def _policies(params: Params) -> tuple[FairsharePolicy | None, QuotaSharePolicy | None]:
    fair, quota = params.get("fairsharePolicy"), params.get("quotaSharePolicy")
    if fair is not None and quota is not None:
        raise InvalidParameter("Specify either fairsharePolicy or quotaSharePolicy, not both")
    return (
        _fairshare(fair) if fair is not None else None,
        from_wire(QuotaSharePolicy, quota) if quota is not None else None,
    )


@operation("CreateSchedulingPolicy")
async def create(ctx: Context, params: Params) -> Any:
    name = params["name"]
    fair, quota = _policies(params)
    if fair is None and quota is None:
        fair = FairsharePolicy()  # spec §12 #27: an empty policy is a default fair-share one
    policy = SchedulingPolicy(
        name=name,
        arn=ctx.arns.scheduling_policy(name),
        fairshare_policy=fair,
        quota_share_policy=quota,
        tags=check_tags(params.get("tags")),
    )
    await ctx.store.resources.create(SchedulingPolicy, name, policy, "Scheduling policy")
    return policy


@operation("UpdateSchedulingPolicy")
async def update(ctx: Context, params: Params) -> Any:
    policy = await find_policy(ctx, params["arn"])
    fair, quota = _policies(params)
    if fair is not None and policy.kind != PolicyKind.FAIRSHARE:
        raise Conflict(
            f"Scheduling policy {policy.name} is a quota share policy; it cannot become fair share"
        )
    if quota is not None and policy.kind != PolicyKind.QUOTA:
        raise Conflict(
            f"Scheduling policy {policy.name} is a fair share policy; it cannot become quota share"
        )
    changed = await ctx.store.resources.modify(
        SchedulingPolicy,
        policy.name,
        lambda current: dataclasses.replace(
            current,
            fairshare_policy=fair or current.fairshare_policy,
            quota_share_policy=quota or current.quota_share_policy,
        ),
    )
    if changed is None:
        raise NotFound(f"arn: scheduling policy {params['arn']} does not exist")
    await ctx.control.configuration_changed()
    return {}


@operation("DescribeSchedulingPolicies")
async def describe(ctx: Context, params: Params) -> Any:
    return {"schedulingPolicies": await described(ctx, SchedulingPolicy, params["arns"])}


@operation("ListSchedulingPolicies")
async def list_policies(ctx: Context, params: Params) -> Any:
    policies, token = await page_of(ctx, SchedulingPolicy, params, "ListSchedulingPolicies")
    return {"schedulingPolicies": policies, "nextToken": token}


@operation("DeleteSchedulingPolicy")
async def delete(ctx: Context, params: Params) -> Any:
    policy = await find_policy(ctx, params["arn"])
    users = [
        q.job_queue_name
        for _, q in await ctx.store.resources.list(JobQueue)
        if q.scheduling_policy_arn == policy.arn
    ]
    if users:
        raise Conflict(
            f"Scheduling policy {policy.name} is used by job queue(s) {', '.join(users)}"
        )
    await ctx.store.resources.delete(SchedulingPolicy, policy.name)
    return {}
