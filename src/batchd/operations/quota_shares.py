"""Quota shares: Create / Update / Describe / List / Delete."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchd.domain.codec import from_wire
from batchd.domain.resources import (
    JobQueue,
    PolicyKind,
    QuotaShare,
    QuotaShareCapacityLimit,
    QuotaSharePreemptionConfiguration,
    QuotaShareResourceSharingConfiguration,
    ResourceState,
    ResourceStatus,
    ServiceEnvironment,
    SharingStrategy,
    is_instance_type,
)
from batchd.errors import Conflict, InvalidParameter, LimitExceeded, NotFound
from batchd.operations.common import (
    check_tags,
    find_policy,
    find_queue,
    find_quota_share,
    page_of,
    quota_share_key,
)
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation


async def _quota_environment(ctx: Context, queue: JobQueue) -> ServiceEnvironment:
    policy = None
    if queue.scheduling_policy_arn:
        policy = await find_policy(ctx, queue.scheduling_policy_arn, "schedulingPolicyArn")
    if policy is None or policy.kind != PolicyKind.QUOTA:
        raise InvalidParameter(
            f"Job queue {queue.job_queue_name} has no quota share policy; quota shares need a "
            "quota-management job queue"
        )
    if queue.status != ResourceStatus.VALID:
        raise Conflict(f"Job queue {queue.job_queue_name} is not VALID")
    arn = queue.environment_arn
    name = ctx.arns.resource_of(arn or "", "service-environment")
    env = await ctx.store.resources.get(ServiceEnvironment, name) if name else None
    if env is None:
        raise NotFound(f"The service environment of job queue {queue.job_queue_name} is gone")
    return env


def _limits(
    raw: list[dict[str, Any]], env: ServiceEnvironment
) -> tuple[QuotaShareCapacityLimit, ...]:
    limits = tuple(from_wire(QuotaShareCapacityLimit, item) for item in raw)
    env_units = {c.capacity_unit for c in env.capacity_limits}
    seen: set[str] = set()
    for i, limit in enumerate(limits):
        unit = limit.capacity_unit
        if not is_instance_type(unit):
            raise InvalidParameter(
                f"capacityLimits[{i}].capacityUnit {unit!r} must be a SageMaker instance type"
            )
        if unit not in env_units:
            raise InvalidParameter(
                f"capacityLimits[{i}].capacityUnit {unit} is not limited by service environment "
                f"{env.service_environment_name} ({', '.join(sorted(env_units))})"
            )
        if unit in seen:
            raise InvalidParameter(f"capacityLimits: {unit} appears more than once")
        seen.add(unit)
    return limits


def _sharing(raw: dict[str, Any]) -> QuotaShareResourceSharingConfiguration:
    config = from_wire(QuotaShareResourceSharingConfiguration, raw)
    if config.strategy != SharingStrategy.LEND_AND_BORROW:
        if config.borrow_limit is not None:
            raise InvalidParameter(
                "resourceSharingConfiguration.borrowLimit is only valid with strategy "
                "LEND_AND_BORROW"
            )
        return config
    if config.borrow_limit is None:
        return dataclasses.replace(config, borrow_limit=-1)
    return config


@operation("CreateQuotaShare")
async def create(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    env = await _quota_environment(ctx, queue)
    name = params["quotaShareName"]
    prefix = f"{queue.job_queue_name}/"
    if await ctx.store.resources.count(QuotaShare, prefix=prefix) >= ctx.limits.max_quota_shares:
        raise LimitExceeded(
            f"Job queue {queue.job_queue_name} already has {ctx.limits.max_quota_shares} "
            "quota shares, the most allowed"
        )
    share = QuotaShare(
        quota_share_name=name,
        quota_share_arn=ctx.arns.quota_share(queue.job_queue_name, name),
        job_queue_arn=queue.job_queue_arn,
        capacity_limits=_limits(params["capacityLimits"], env),
        resource_sharing_configuration=_sharing(params["resourceSharingConfiguration"]),
        preemption_configuration=from_wire(
            QuotaSharePreemptionConfiguration, params["preemptionConfiguration"]
        ),
        state=ResourceState(params.get("state") or ResourceState.ENABLED),
        tags=check_tags(params.get("tags")),
    )
    key = quota_share_key(queue.job_queue_name, name)
    await ctx.store.resources.create(QuotaShare, key, share, f"Quota share {name} of job queue")
    await ctx.control.configuration_changed()
    return share


@operation("UpdateQuotaShare")
async def update(ctx: Context, params: Params) -> Any:
    share = await find_quota_share(ctx, params["quotaShareArn"])
    queue_name = share.job_queue_arn.rsplit("/", 1)[-1]
    changes: dict[str, Any] = {}
    if params.get("capacityLimits") is not None:
        queue = await find_queue(ctx, queue_name)
        env = await _quota_environment(ctx, queue)
        changes["capacity_limits"] = _limits(params["capacityLimits"], env)
    if params.get("resourceSharingConfiguration") is not None:
        changes["resource_sharing_configuration"] = _sharing(params["resourceSharingConfiguration"])
    if params.get("preemptionConfiguration") is not None:
        changes["preemption_configuration"] = from_wire(
            QuotaSharePreemptionConfiguration, params["preemptionConfiguration"]
        )
    if params.get("state"):
        changes["state"] = ResourceState(params["state"])
    key = quota_share_key(queue_name, share.quota_share_name)
    changed = await ctx.store.resources.modify(
        QuotaShare, key, lambda current: dataclasses.replace(current, **changes)
    )
    if changed is None:
        raise NotFound(f"quotaShareArn: quota share {params['quotaShareArn']} does not exist")
    share = changed
    await ctx.control.configuration_changed()
    return share


@operation("DescribeQuotaShare")
async def describe(ctx: Context, params: Params) -> Any:
    return await find_quota_share(ctx, params["quotaShareArn"])


@operation("ListQuotaShares")
async def list_shares(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    scope = f"ListQuotaShares/{queue.job_queue_name}"
    shares, token = await page_of(ctx, QuotaShare, params, scope, prefix=f"{queue.job_queue_name}/")
    return {"quotaShares": shares, "nextToken": token}


@operation("DeleteQuotaShare")
async def delete(ctx: Context, params: Params) -> Any:
    share = await find_quota_share(ctx, params["quotaShareArn"])
    queue_name = share.job_queue_arn.rsplit("/", 1)[-1]
    if share.state != ResourceState.DISABLED:
        raise Conflict(
            f"Quota share {share.quota_share_name} must be DISABLED before it can be deleted"
        )
    await ctx.store.resources.delete(
        QuotaShare, quota_share_key(queue_name, share.quota_share_name)
    )
    await ctx.control.terminate_queued("Quota share deleted", queue_name, share.quota_share_name)
    await ctx.control.configuration_changed()
    return {}
