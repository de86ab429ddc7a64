"""TagResource / UntagResource / ListTagsForResource for every ARN batchd issues."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.errors import InvalidParameter, LimitExceeded, NotFound
from batchd.operations.common import (
    check_backend,
    check_tags,
    find_environment,
    find_policy,
    find_queue,
    find_quota_share,
    quota_share_key,
)
from batchd.operations.context import Context
from batchd.operations.jobs import find_job
from batchd.operations.registry import Params, operation

Tagged = ServiceEnvironment | JobQueue | SchedulingPolicy | QuotaShare

_MAX_TAGS = 50


async def _resource(ctx: Context, arn: str) -> tuple[type[Any], str, Tagged] | None:
    """The tagged resource (not a job) behind an ARN; None for a service job."""
    if ctx.arns.resource_of(arn, "service-job") is not None:
        return None
    if ctx.arns.resource_of(arn, "service-environment") is not None:
        env = await find_environment(ctx, arn, "resourceArn")
        return ServiceEnvironment, env.service_environment_name, env
    if ctx.arns.resource_of(arn, "scheduling-policy") is not None:
        policy = await find_policy(ctx, arn, "resourceArn")
        return SchedulingPolicy, policy.name, policy
    rest = ctx.arns.resource_of(arn, "job-queue")
    if rest is not None and "/quota-share/" in rest:
        share = await find_quota_share(ctx, arn, "resourceArn")
        key = quota_share_key(rest.split("/", 1)[0], share.quota_share_name)
        return QuotaShare, key, share
    if rest is not None:
        queue = await find_queue(ctx, arn, "resourceArn")
        return JobQueue, queue.job_queue_name, queue
    raise NotFound(f"resourceArn {arn} is not the ARN of a batchd resource in this account")


def _merged(
    old: dict[str, str], add: dict[str, str] | None, drop: list[str] | None
) -> dict[str, str]:
    tags = {**old, **check_tags(add)}
    check_tags(dict.fromkeys(drop or [], ""))  # aws: keys can be neither set nor removed
    for key in drop or []:
        tags.pop(key, None)
    if len(tags) > _MAX_TAGS:
        raise LimitExceeded(f"A resource can have at most {_MAX_TAGS} tags; this makes {len(tags)}")
    return tags


async def _retag(
    ctx: Context, arn: str, add: dict[str, str] | None, drop: list[str] | None
) -> None:
    found = await _resource(ctx, arn)
    if found is None:
        job = await find_job(ctx, arn)
        await ctx.control.update(
            job.job_id, lambda j: dataclasses.replace(j, tags=_merged(j.tags, add, drop))
        )
        return
    cls, name, _ = found

    def change(obj: Tagged) -> Tagged:
        tags = _merged(obj.tags, add, drop)
        if isinstance(obj, ServiceEnvironment) and add:
            check_backend(ctx, add)
        return dataclasses.replace(obj, tags=tags)

    changed = await ctx.store.resources.modify(cls, name, change)
    if changed is None:
        raise NotFound(f"resourceArn {arn} does not exist")
    if cls is ServiceEnvironment:
        # The scheduler reads an environment's backend from its tags: apply it now.
        await ctx.control.configuration_changed()


@operation("TagResource")
async def tag(ctx: Context, params: Params) -> Any:
    if not params.get("tags"):
        raise InvalidParameter("tags must hold at least one tag")
    await _retag(ctx, params["resourceArn"], params["tags"], None)
    return {}


@operation("UntagResource")
async def untag(ctx: Context, params: Params) -> Any:
    await _retag(ctx, params["resourceArn"], None, params["tagKeys"])
    return {}


@operation("ListTagsForResource")
async def list_tags(ctx: Context, params: Params) -> Any:
    arn = params["resourceArn"]
    found = await _resource(ctx, arn)
    tags = (await find_job(ctx, arn)).tags if found is None else found[2].tags
    return {"tags": tags}
