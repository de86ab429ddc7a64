"""Lookups and checks that several operations share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from batchd.domain.resources import (
    BACKEND_TAG,
    JobQueue,
    QuotaShare,
    SchedulingPolicy,
    ServiceEnvironment,
)
from batchd.errors import InvalidParameter, NotFound
from batchd.operations.context import Context
from batchd.protocol.tokens import decode_token, encode_token

__all__ = [
    "check_backend",
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


def check_backend(ctx: Context, tags: Mapping[str, str]) -> None:
    """A service environment's backend tag must name a configured backend: the scheduler
    dispatches its jobs there, and an unknown name would fail every cycle."""
    backend = tags.get(BACKEND_TAG)
    if backend is not None and backend not in ctx.backends:
        raise InvalidParameter(
            f"tags: {BACKEND_TAG} {backend!r} is not a backend of this server; "
            f"valid backends: {', '.join(sorted(ctx.backends))}"
            + (
                " (start batchd serve with --kubeconfig or --kubernetes-namespace to offer "
                "kubernetes)"
                if backend == "kubernetes"
                else ""
            )
        )


# How each kind is addressed: its ARN resource type, what to call it, and whether a bare
# name is accepted besides the ARN (scheduling policies are addressed only by ARN).
_ADDRESSING: dict[type, tuple[str, str, bool]] = {
    ServiceEnvironment: ("service-environment", "service environment", True),
    JobQueue: ("job-queue", "job queue", True),
    SchedulingPolicy: ("scheduling-policy", "scheduling policy", False),
}


async def lookup(ctx: Context, cls: type[R], reference: str) -> R | None:
    """The resource a name or ARN refers to, as AWS resolves it for ``cls``."""
    kind, _, names_too = _ADDRESSING[cls]
    resolve = ctx.arns.name_of if names_too else ctx.arns.resource_of
    name = resolve(reference, kind)
    return await ctx.store.resources.get(cls, name) if name else None


async def find(ctx: Context, cls: type[R], reference: str, member: str) -> R:
    found = await lookup(ctx, cls, reference)
    if found is None:
        raise NotFound(f"{member}: {_ADDRESSING[cls][1]} {reference} does not exist")
    return found


async def find_environment(ctx: Context, name_or_arn: str, member: str) -> ServiceEnvironment:
    return await find(ctx, ServiceEnvironment, name_or_arn, member)


async def find_queue(ctx: Context, name_or_arn: str, member: str = "jobQueue") -> JobQueue:
    return await find(ctx, JobQueue, name_or_arn, member)


async def find_policy(ctx: Context, arn: str, member: str = "arn") -> SchedulingPolicy:
    return await find(ctx, SchedulingPolicy, arn, member)


async def described(ctx: Context, cls: type[R], references: list[str]) -> list[R]:
    """Describe* with a list: each named resource once, in the order asked; unknowns omitted."""
    found: list[R] = []
    for reference in references:
        resource = await lookup(ctx, cls, reference)
        if resource is not None and resource not in found:
            found.append(resource)
    return found


def quota_share_key(queue: str, share: str) -> str:
    return f"{queue}/{share}"


async def find_quota_share(ctx: Context, arn: str, member: str = "quotaShareArn") -> QuotaShare:
    rest = ctx.arns.resource_of(arn, "job-queue") or ""
    queue, _, share = rest.partition("/quota-share/")
    found = None
    if queue and share and "/" not in share:
        found = await ctx.store.resources.get(QuotaShare, quota_share_key(queue, share))
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
    rows = await ctx.store.resources.list(cls, prefix=prefix, after=after, limit=limit + 1)
    token = encode_token(scope, [rows[limit - 1][0]]) if len(rows) > limit else None
    return [obj for _, obj in rows[:limit]], token


def require(params: Mapping[str, Any], member: str) -> Any:
    value = params.get(member)
    if value is None:
        raise InvalidParameter(f"{member} is required")
    return value
