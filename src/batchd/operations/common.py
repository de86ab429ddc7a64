"""Lookups and checks that several operations share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from batchd.domain.resources import JobQueue, QuotaShare, SchedulingPolicy, ServiceEnvironment
from batchd.errors import InvalidParameter, NotFound
from batchd.operations.context import Context
from batchd.protocol.tokens import decode_token, encode_token

__all__ = [
    "check_tags",
    "find_environment",
    "find_policy",
    "find_queue",
    "find_quota_share",
    "page_of",
    "quota_share_key",
]

R = TypeVar("R", ServiceEnvironment, JobQueue, SchedulingPolicy, QuotaShare)


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if not tags:
        return {}
    for key in tags:
        if key.lower().startswith("aws:"):
            raise InvalidParameter(
                f"Tag key {key} is invalid: keys beginning with aws: are reserved"
            )
    return dict(tags)


async def find_environment(ctx: Context, name_or_arn: str, member: str) -> ServiceEnvironment:
    name = ctx.arns.name_of(name_or_arn, "service-environment")
    found = await ctx.store.get(ServiceEnvironment, name) if name else None
    if found is None:
        raise NotFound(f"{member}: service environment {name_or_arn} does not exist")
    return found


async def find_queue(ctx: Context, name_or_arn: str, member: str = "jobQueue") -> JobQueue:
    name = ctx.arns.name_of(name_or_arn, "job-queue")
    found = await ctx.store.get(JobQueue, name) if name else None
    if found is None:
        raise NotFound(f"{member}: job queue {name_or_arn} does not exist")
    return found


async def find_policy(ctx: Context, arn: str, member: str = "arn") -> SchedulingPolicy:
    name = ctx.arns.resource_of(arn, "scheduling-policy")
    found = await ctx.store.get(SchedulingPolicy, name) if name else None
    if found is None:
        raise NotFound(f"{member}: scheduling policy {arn} does not exist")
    return found


def quota_share_key(queue: str, share: str) -> str:
    return f"{queue}/{share}"


async def find_quota_share(ctx: Context, arn: str, member: str = "quotaShareArn") -> QuotaShare:
    rest = ctx.arns.resource_of(arn, "job-queue") or ""
    queue, _, share = rest.partition("/quota-share/")
    found = None
    if queue and share and "/" not in share:
        found = await ctx.store.get(QuotaShare, quota_share_key(queue, share))
    if found is None:
        raise NotFound(f"{member}: quota share {arn} does not exist")
    return found


async def page_of(
    ctx: Context,
    cls: type[R],
    params: Mapping[str, Any],
    scope: str,
    prefix: str | None = None,
) -> tuple[list[R], str | None]:
    """One page of a resource listing in creation order, with the token for the next."""
    limit = params.get("maxResults") or 100
    after = None
    if params.get("nextToken"):
        after = decode_token(scope, params["nextToken"], (int,))[0]
    rows = await ctx.store.resources(cls, prefix=prefix, after=after, limit=limit + 1)
    token = encode_token(scope, [rows[limit - 1][0]]) if len(rows) > limit else None
    return [obj for _, obj in rows[:limit]], token


def require(params: Mapping[str, Any], member: str) -> Any:
    value = params.get(member)
    if value is None:
        raise InvalidParameter(f"{member} is required")
    return value
