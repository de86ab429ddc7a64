"""SAGEMAKER_TRAINING job queues: Create / Update / Describe / Delete."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchd.domain.codec import from_wire
from batchd.domain.resources import (
    SAGEMAKER_TRAINING,
    JobQueue,
    JobStateTimeLimitAction,
    PolicyKind,
    ResourceState,
    SchedulingPolicy,
    ServiceEnvironment,
    ServiceEnvironmentOrder,
    TimeLimitActionType,
)
from batchd.errors import Conflict, InvalidParameter, LimitExceeded, NotFound
from batchd.operations.common import (
    check_tags,
    described,
    find_environment,
    find_policy,
    find_queue,
    page_of,
)
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation

TIME_LIMIT_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED",
)


def _time_limit_actions(raw: list[dict[str, Any]]) -> tuple[JobStateTimeLimitAction, ...]:
    actions = tuple(from_wire(JobStateTimeLimitAction, item) for item in raw)
    seen: set[str] = set()
    for i, action in enumerate(actions):
        where = f"jobStateTimeLimitActions[{i}]"
        if action.action != TimeLimitActionType.TERMINATE:
            raise InvalidParameter(
                f"{where}.action must be TERMINATE for SAGEMAKER_TRAINING job queues"
            )
        if action.reason not in TIME_LIMIT_REASONS:
            raise InvalidParameter(
                f"{where}.reason {action.reason!r} is not supported; use one of "
                + ", ".join(TIME_LIMIT_REASONS)
            )
        if action.reason in seen:
            raise InvalidParameter(f"{where}.reason {action.reason} is given more than once")
        seen.add(action.reason)
    return actions


async def _environment_order(
    ctx: Context, raw: list[dict[str, Any]]
) -> tuple[tuple[ServiceEnvironmentOrder, ...], list[ServiceEnvironment]]:
    if not raw:
        raise InvalidParameter(
            "serviceEnvironmentOrder is required for SAGEMAKER_TRAINING job queues"
        )
    envs = []
    order = []
    for i, item in enumerate(raw):
        env = await find_environment(
            ctx, item["serviceEnvironment"], f"serviceEnvironmentOrder[{i}].serviceEnvironment"
        )
        if env.service_environment_type != SAGEMAKER_TRAINING:
            raise InvalidParameter(
                f"Service environment {env.service_environment_name} is not SAGEMAKER_TRAINING"
            )
        envs.append(env)
        order.append(ServiceEnvironmentOrder(item["order"], env.service_environment_arn))
    return tuple(order), envs


async def _check_pairing(
    ctx: Context,
    queue_name: str,
    envs: list[ServiceEnvironment],
    policy: SchedulingPolicy | None,
) -> None:
    """Quota-share queues need an instance-type environment of their own, and vice versa."""
    quota = policy is not None and policy.kind == PolicyKind.QUOTA
    for env in envs:
        name = env.service_environment_name
        if quota and not env.quota_managed:
            raise InvalidParameter(
                f"Service environment {name} limits NUM_INSTANCES; a job queue with a quota "
                "share policy needs capacity limits per instance type (e.g. ml.m5.large)"
            )
        if not quota and env.quota_managed:
            raise InvalidParameter(
                f"Service environment {name} limits instance types, which needs a job queue "
                "with a quota share scheduling policy"
            )
        if env.quota_managed:
            for _, other in await ctx.store.resources.list(JobQueue):
                if other.job_queue_name != queue_name and any(
                    o.service_environment == env.service_environment_arn
                    for o in other.service_environment_order
                ):
                    raise Conflict(
                        f"Service environment {name} is already connected to job queue "
                        f"{other.job_queue_name}; a quota-managed environment serves one queue"
                    )


@operation("CreateJobQueue")
async def create(ctx: Context, params: Params) -> Any:
    name = params["jobQueueName"]
    if params.get("jobQueueType") != SAGEMAKER_TRAINING:
        raise InvalidParameter(
            "jobQueueType must be SAGEMAKER_TRAINING: batchd serves service-job queues only"
        )
    if params.get("computeEnvironmentOrder"):
        raise InvalidParameter(
            "computeEnvironmentOrder cannot be used with SAGEMAKER_TRAINING job queues; "
            "use serviceEnvironmentOrder"
        )
    if await ctx.store.resources.count(JobQueue) >= ctx.limits.max_queues:
        raise LimitExceeded(
            f"Cannot create job queue {name}: the limit of {ctx.limits.max_queues} job queues "
            "is reached"
        )
    order, envs = await _environment_order(ctx, params.get("serviceEnvironmentOrder") or [])
    policy = None
    if params.get("schedulingPolicyArn"):
        policy = await find_policy(ctx, params["schedulingPolicyArn"], "schedulingPolicyArn")
    await _check_pairing(ctx, name, envs, policy)
    queue = JobQueue(
        job_queue_name=name,
        job_queue_arn=ctx.arns.job_queue(name),
        priority=params["priority"],
        service_environment_order=order,
        state=ResourceState(params.get("state") or ResourceState.ENABLED),
        scheduling_policy_arn=policy.arn if policy else None,
        job_state_time_limit_actions=_time_limit_actions(
            params.get("jobStateTimeLimitActions") or []
        ),
        tags=check_tags(params.get("tags")),
    )
    await ctx.store.resources.create(JobQueue, name, queue, "Job queue")
    await ctx.control.configuration_changed()
    return queue


@operation("UpdateJobQueue")
async def update(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    changes: dict[str, Any] = {}
    if params.get("state") is not None:
        changes["state"] = ResourceState(params["state"])
    if params.get("priority") is not None:
        changes["priority"] = params["priority"]
    policy = None
    if queue.scheduling_policy_arn:
        policy = await find_policy(ctx, queue.scheduling_policy_arn, "schedulingPolicyArn")
    if params.get("schedulingPolicyArn"):
        policy = await _replacement_policy(ctx, queue, policy, params["schedulingPolicyArn"])
        changes["scheduling_policy_arn"] = policy.arn
    if params.get("serviceEnvironmentOrder") is not None:
        order, envs = await _environment_order(ctx, params["serviceEnvironmentOrder"])
        await _check_pairing(ctx, queue.job_queue_name, envs, policy)
        changes["service_environment_order"] = order
    if params.get("jobStateTimeLimitActions") is not None:
        changes["job_state_time_limit_actions"] = _time_limit_actions(
            params["jobStateTimeLimitActions"]
        )
    name = queue.job_queue_name
    changed = await ctx.store.resources.modify(
        JobQueue, name, lambda current: dataclasses.replace(current, **changes)
    )
    if changed is None:
        raise NotFound(f"jobQueue: job queue {name} does not exist")
    queue = changed
    await ctx.control.configuration_changed()
    return queue


async def _replacement_policy(
    ctx: Context, queue: JobQueue, current: SchedulingPolicy | None, arn: str
) -> SchedulingPolicy:
    new = await find_policy(ctx, arn, "schedulingPolicyArn")
    if current is None:
        raise Conflict(
            f"Job queue {queue.job_queue_name} was created without a scheduling policy (FIFO); "
            "a policy cannot be added later"
        )
    if new.kind != current.kind:
        raise Conflict(
            f"Job queue {queue.job_queue_name} uses a {current.kind.lower()} policy; it can only "
            "be replaced by a policy of the same kind"
        )
    return new


@operation("DescribeJobQueues")
async def describe(ctx: Context, params: Params) -> Any:
    wanted = params.get("jobQueues")
    if wanted:
        return {"jobQueues": await described(ctx, JobQueue, wanted)}
    queues, token = await page_of(ctx, JobQueue, params, "DescribeJobQueues")
    return {"jobQueues": queues, "nextToken": token}


@operation("DeleteJobQueue")
async def delete(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    name = queue.job_queue_name
    if queue.state != ResourceState.DISABLED:
        raise Conflict(f"Job queue {name} must be DISABLED before it can be deleted")
    # Its jobs end first (one commit), then the queue, its shares and the jobs' queue name go
    # in one transaction: a crash between the two leaves a DISABLED queue whose jobs ended,
    # and DeleteJobQueue can be called again.
    await ctx.control.terminate_queued("Job queue deleted", name)
    await ctx.store.resources.delete_queue(name, f"{name}#deleted-{ctx.clock.now_ms()}")
    await ctx.control.configuration_changed()
    return {}
