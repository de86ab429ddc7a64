"""Service environments: Create / Update / Describe / Delete."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchd.domain.codec import from_wire
from batchd.domain.resources import (
    NUM_INSTANCES,
    CapacityLimit,
    JobQueue,
    ResourceState,
    ServiceEnvironment,
    is_instance_type,
)
from batchd.errors import Conflict, InvalidParameter, LimitExceeded, NotFound
from batchd.operations.common import (
    check_backend,
    check_tags,
    described,
    find_environment,
    page_of,
)
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation

__all__ = ["check_capacity_limits"]


def check_capacity_limits(raw: list[dict[str, Any]]) -> tuple[CapacityLimit, ...]:
    limits: list[CapacityLimit] = []
    for i, item in enumerate(raw):
        if item.get("maxCapacity") is None or item.get("capacityUnit") is None:
            raise InvalidParameter(
                f"capacityLimits[{i}]: both maxCapacity and capacityUnit are required"
            )
        unit = item["capacityUnit"]
        if unit != NUM_INSTANCES and not is_instance_type(unit):
            raise InvalidParameter(
                f"capacityLimits[{i}].capacityUnit {unit!r} is neither NUM_INSTANCES nor a "
                "SageMaker instance type such as ml.m5.large"
            )
        limits.append(from_wire(CapacityLimit, item))
    units = [limit.capacity_unit for limit in limits]
    if len(set(units)) != len(units):
        raise InvalidParameter("capacityLimits: each capacityUnit may appear only once")
    if NUM_INSTANCES in units and len(units) > 1:
        raise InvalidParameter(
            "capacityLimits: NUM_INSTANCES cannot be combined with other capacity units"
        )
    return tuple(limits)


@operation("CreateServiceEnvironment")
async def create(ctx: Context, params: Params) -> Any:
    name = params["serviceEnvironmentName"]
    if await ctx.store.resources.count(ServiceEnvironment) >= ctx.limits.max_environments:
        raise LimitExceeded(
            f"Cannot create service environment {name}: the limit of "
            f"{ctx.limits.max_environments} service environments is reached"
        )
    env = ServiceEnvironment(
        service_environment_name=name,
        service_environment_arn=ctx.arns.service_environment(name),
        capacity_limits=check_capacity_limits(params["capacityLimits"]),
        state=ResourceState(params.get("state") or ResourceState.ENABLED),
        tags=check_tags(params.get("tags")),
    )
    check_backend(ctx, env.tags)
    await ctx.store.resources.create(ServiceEnvironment, name, env, "Service environment")
    await ctx.control.configuration_changed()
    return env


@operation("UpdateServiceEnvironment")
async def update(ctx: Context, params: Params) -> Any:
    env = await find_environment(ctx, params["serviceEnvironment"], "serviceEnvironment")
    changes: dict[str, Any] = {}
    if params.get("state"):
        changes["state"] = ResourceState(params["state"])
    if params.get("capacityLimits") is not None:
        limits = check_capacity_limits(params["capacityLimits"])
        new = dataclasses.replace(env, capacity_limits=limits)
        if new.quota_managed != env.quota_managed and await _attached_queues(ctx, env):
            raise Conflict(
                f"Cannot change service environment {env.service_environment_name} between "
                "NUM_INSTANCES and instance-type capacity limits while a job queue uses it"
            )
        changes["capacity_limits"] = limits
    name = env.service_environment_name

    def change(current: ServiceEnvironment) -> ServiceEnvironment:
        new = dataclasses.replace(current, **changes)
        # An environment tagged before backend tags were checked may name a backend that
        # does not exist; it may be changed and disabled, but not left in service.
        if new.state == ResourceState.ENABLED:
            check_backend(ctx, new.tags)
        return new

    changed = await ctx.store.resources.modify(ServiceEnvironment, name, change)
    if changed is None:
        raise NotFound(f"serviceEnvironment: service environment {name} does not exist")
    env = changed
    await ctx.control.configuration_changed()
    return env


async def _attached_queues(ctx: Context, env: ServiceEnvironment) -> list[JobQueue]:
    return [
        queue
        for _, queue in await ctx.store.resources.list(JobQueue)
        if any(
            o.service_environment == env.service_environment_arn
            for o in queue.service_environment_order
        )
    ]


@operation("DescribeServiceEnvironments")
async def describe(ctx: Context, params: Params) -> Any:
    wanted = params.get("serviceEnvironments")
    if wanted:
        return {"serviceEnvironments": await described(ctx, ServiceEnvironment, wanted)}
    envs, token = await page_of(ctx, ServiceEnvironment, params, "DescribeServiceEnvironments")
    return {"serviceEnvironments": envs, "nextToken": token}


@operation("DeleteServiceEnvironment")
async def delete(ctx: Context, params: Params) -> Any:
    env = await find_environment(ctx, params["serviceEnvironment"], "serviceEnvironment")
    name = env.service_environment_name
    if env.state != ResourceState.DISABLED:
        raise Conflict(f"Service environment {name} must be DISABLED before it can be deleted")
    queues = await _attached_queues(ctx, env)
    if queues:
        names = ", ".join(q.job_queue_name for q in queues)
        raise Conflict(
            f"Service environment {name} is still used by job queue(s) {names}; "
            "remove it from their serviceEnvironmentOrder or delete them first"
        )
    await ctx.store.resources.delete(ServiceEnvironment, name)
    await ctx.control.configuration_changed()
    return {}
