"""Service jobs: Submit / Describe / List / Update / Terminate."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from typing import Any

from batchd import jsontext
from batchd.domain.capacity import capacity_usage
from batchd.domain.codec import from_wire
from batchd.domain.jobs import (
    ServiceJob,
    ServiceJobPreemptionConfiguration,
    ServiceJobRetryStrategy,
    ServiceJobTimeout,
)
from batchd.domain.resources import (
    JobQueue,
    PolicyKind,
    QuotaShare,
    ResourceState,
    ResourceStatus,
    SchedulingPolicy,
    ServiceEnvironment,
)
from batchd.errors import ClientError, Conflict, InvalidParameter, LimitExceeded, NotFound
from batchd.operations.common import check_tags, find_queue, quota_share_key
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation
from batchd.protocol.tokens import decode_token, encode_token
from batchd.storage.job_reads import JobQuery

__all__ = ["find_job"]

_seq = itertools.count(1)


def _job_id(ctx: Context, job_id_or_arn: str) -> str | None:
    job_id = job_id_or_arn
    if job_id_or_arn.startswith("arn:"):
        job_id = ctx.arns.resource_of(job_id_or_arn, "service-job") or ""
    return job_id if job_id and len(job_id) <= 36 else None


async def find_job(ctx: Context, job_id_or_arn: str) -> ServiceJob:
    job_id = _job_id(ctx, job_id_or_arn)
    job = await ctx.store.job_reads.get(job_id) if job_id else None
    if job is None:
        raise NotFound(f"Service job {job_id_or_arn} not found")
    return job


def _request(params: Params) -> Params:
    return {k: v for k, v in params.items() if k != "clientToken"}


def _digest(params: Params) -> str:
    return hashlib.sha256(jsontext.dumps(_request(params), sort_keys=True)).hexdigest()


def _payload(text: str) -> dict[str, Any]:
    try:
        payload = jsontext.loads(text)
    except ValueError as err:
        raise InvalidParameter(
            "serviceRequestPayload must be the JSON text of a SageMaker CreateTrainingJob "
            f"request: {err}"
        ) from err
    if not isinstance(payload, dict):
        raise InvalidParameter(
            "serviceRequestPayload must be a JSON object (a SageMaker CreateTrainingJob request)"
        )
    return payload


async def _check_queue_routing(ctx: Context, queue: JobQueue, params: Params) -> None:
    kind = PolicyKind.FIFO
    if queue.scheduling_policy_arn:
        name = ctx.arns.resource_of(queue.scheduling_policy_arn, "scheduling-policy") or ""
        policy = await ctx.store.resources.get(SchedulingPolicy, name)
        kind = policy.kind if policy else PolicyKind.FIFO
    share, quota = params.get("shareIdentifier"), params.get("quotaShareName")
    qname = queue.job_queue_name
    if kind == PolicyKind.FAIRSHARE and not share:
        raise InvalidParameter(f"shareIdentifier is required: job queue {qname} uses fair share")
    if kind != PolicyKind.FAIRSHARE and share:
        raise InvalidParameter(
            f"shareIdentifier is only valid for fair share job queues; {qname} is not one"
        )
    if kind == PolicyKind.QUOTA and not quota:
        raise InvalidParameter(f"quotaShareName is required: job queue {qname} uses quota shares")
    if kind != PolicyKind.QUOTA and quota:
        raise InvalidParameter(
            f"quotaShareName is only valid for quota share job queues; {qname} is not one"
        )
    if quota:
        found = await ctx.store.resources.get(QuotaShare, quota_share_key(qname, quota))
        if found is None:
            raise NotFound(
                f"quotaShareName: quota share {quota} does not exist in job queue {qname}"
            )
        if found.state != ResourceState.ENABLED:
            raise Conflict(f"Quota share {quota} is DISABLED and accepts no new jobs")
    # Most submits name a share that already has jobs: no limit to check. The scheduling
    # leader knows most of them; else one quick read.
    if (
        share
        and not ctx.control.share_known_active(qname, share)
        and not await ctx.store.job_reads.share_active(qname, share)
    ):
        active = await ctx.store.job_reads.active_share_identifiers(
            qname, ctx.limits.max_active_shares + 1
        )
        if share not in active and len(active) >= ctx.limits.max_active_shares:
            raise LimitExceeded(
                f"Job queue {qname} already has {ctx.limits.max_active_shares} active share "
                "identifiers, the most allowed"
            )


@operation("SubmitServiceJob")
async def submit(ctx: Context, params: Params) -> Any:
    token = params.get("clientToken")
    digest = _digest(params)
    try:
        return await _submit(ctx, params, token, digest)
    except ClientError:
        # A client retrying after a lost answer gets its job even if the queue changed since;
        # looked up only here, so the common path costs no extra read.
        earlier = await ctx.store.job_reads.by_token(token) if token else None
        if earlier is None:
            raise
        return _same_request(earlier, params, digest)


async def _submit(ctx: Context, params: Params, token: str | None, digest: str) -> ServiceJob:
    queue = await find_queue(ctx, params["jobQueue"])
    if queue.job_queue_type != params["serviceJobType"]:
        raise InvalidParameter(
            f"serviceJobType {params['serviceJobType']} does not match job queue type "
            f"{queue.job_queue_type}"
        )
    if queue.state != ResourceState.ENABLED or queue.status != ResourceStatus.VALID:
        raise Conflict(f"Job queue {queue.job_queue_name} is {queue.state} and accepts no jobs")
    payload = _payload(params["serviceRequestPayload"])
    await _check_queue_routing(ctx, queue, params)
    per_instance_type = await _limits_per_instance_type(ctx, queue)
    limit = ctx.limits.max_submitted_per_queue
    waiting = ctx.control.submitted_count(queue.job_queue_name)
    if waiting is None:  # a follower replica: ask the database
        waiting = await ctx.store.job_reads.submitted_in(queue.job_queue_name)
    if waiting >= limit:
        raise LimitExceeded(
            f"Job queue {queue.job_queue_name} has {limit} SUBMITTED jobs, the most allowed"
        )
    job_id = ctx.ids.job_id()
    now = ctx.clock.now_ms()
    job = ServiceJob(
        job_id=job_id,
        job_arn=ctx.arns.service_job(job_id),
        job_name=params["jobName"],
        job_queue=queue.job_queue_arn,
        service_request_payload=params["serviceRequestPayload"],
        created_at=now,
        # Ties within a millisecond keep arrival order (FIFO's tie-break).
        seq=now * 1000 + next(_seq) % 1000,
        capacity_usage=capacity_usage(payload, per_instance_type=per_instance_type),
        retry_strategy=_opt(ServiceJobRetryStrategy, params.get("retryStrategy")),
        scheduling_priority=params.get("schedulingPriority"),
        share_identifier=params.get("shareIdentifier"),
        quota_share_name=params.get("quotaShareName"),
        preemption_configuration=_opt(
            ServiceJobPreemptionConfiguration, params.get("preemptionConfiguration")
        ),
        timeout_config=_opt(ServiceJobTimeout, params.get("timeoutConfig")),
        tags=check_tags(params.get("tags")),
        client_token=token,
        request_digest=digest,
    )
    stored = await ctx.store.job_writes.submit(job)
    if stored.job_id != job.job_id:  # a concurrent retry with the same token won the race
        return _same_request(stored, params, digest)
    await ctx.control.submitted(stored)
    return stored


async def _limits_per_instance_type(ctx: Context, queue: JobQueue) -> bool:
    """Whether the queue's environment limits instance types (quota management).

    Queues and environments are paired by kind and cannot change it while paired, so this
    holds for the job's whole life.
    """
    name = ctx.arns.resource_of(queue.environment_arn or "", "service-environment")
    env = await ctx.store.resources.get(ServiceEnvironment, name) if name else None
    return env is not None and env.quota_managed


def _opt(cls: Any, raw: dict[str, Any] | None) -> Any:
    return None if raw is None else from_wire(cls, raw)


def _same_request(earlier: ServiceJob, params: Params, digest: str) -> ServiceJob:
    if earlier.request_digest != digest:
        token = params.get("clientToken")
        raise Conflict(
            f"clientToken {token} was already used for job {earlier.job_id} with different "
            "parameters; use a new token for a new job"
        )
    return earlier


@operation("DescribeServiceJob")
async def describe(ctx: Context, params: Params) -> Any:
    reference = params["jobId"]
    job_id = _job_id(ctx, reference)
    found = await ctx.store.job_reads.document(job_id) if job_id else None
    if found is None:
        raise NotFound(f"Service job {reference} not found")
    return found


_FILTERS = (
    "JOB_NAME",
    "BEFORE_CREATED_AT",
    "AFTER_CREATED_AT",
    "SHARE_IDENTIFIER",
    "QUOTA_SHARE_NAME",
)


def _filter(params: Params) -> tuple[str, str] | None:
    filters = params.get("filters") or []
    if not filters:
        return None
    name, values = filters[0].get("name"), filters[0].get("values") or []
    if name not in _FILTERS:
        raise InvalidParameter(
            f"filters[0].name {name!r} is not supported; use one of {', '.join(_FILTERS)}"
        )
    if len(values) != 1:
        raise InvalidParameter(f"filters[0].values must hold exactly one value for {name}")
    value = values[0]
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT") and not (
        re.fullmatch(r"[0-9]{1,19}", value) and int(value) < 2**63  # fits SQL BIGINT
    ):
        raise InvalidParameter(
            f"filters[0].values for {name} must be a time in epoch milliseconds, got {value!r}"
        )
    return name, value


def _query(queue: str, params: Params, limit: int) -> JobQuery:
    found = _filter(params)
    status = params.get("jobStatus")
    statuses: tuple[str, ...] | None = (status or "RUNNING",)
    fields: dict[str, Any] = {}
    if found is not None:
        name, value = found
        if name == "SHARE_IDENTIFIER":
            fields["share_identifier"] = value
        elif name == "QUOTA_SHARE_NAME":
            fields["quota_share_name"] = value
        else:
            statuses = None  # these filters list every status (spec §3.3)
            if name == "JOB_NAME":
                prefix = value.endswith("*")
                fields["name"] = value.rstrip("*").lower() if prefix else value.lower()
                fields["name_prefix"] = prefix
            elif name == "BEFORE_CREATED_AT":
                fields["created_before"] = int(value)
            else:
                fields["created_after"] = int(value)
    return JobQuery(queue=queue, limit=limit, statuses=statuses, **fields)


@operation("ListServiceJobs")
async def list_jobs(ctx: Context, params: Params) -> Any:
    if not params.get("jobQueue"):
        raise InvalidParameter("jobQueue is required: name the job queue to list")
    queue = await find_queue(ctx, params["jobQueue"])
    limit = params.get("maxResults") or 100
    query = _query(queue.job_queue_name, params, limit + 1)
    scope = (
        "ListServiceJobs/"
        + hashlib.sha256(repr(_query(queue.job_queue_name, params, 0)).encode()).hexdigest()[:16]
    )
    if params.get("nextToken"):
        created_at, job_id = decode_token(scope, params["nextToken"], (int, str))
        query = dataclasses.replace(query, after=(created_at, job_id))
    # Stored documents are already keyed by wire names: serialize them without a round trip
    # through objects, the largest cost of a list page.
    found = await ctx.store.job_reads.page(query)
    token = None
    if len(found) > limit:
        last = found[limit - 1]
        token = encode_token(scope, [last["createdAt"], last["jobId"]])
    return {"jobSummaryList": found[:limit], "nextToken": token}


@operation("UpdateServiceJob")
async def update(ctx: Context, params: Params) -> Any:
    job = await find_job(ctx, params["jobId"])
    if job.terminal:
        raise Conflict(f"Service job {job.job_id} is {job.status.value}; it can no longer change")
    priority = params["schedulingPriority"]
    return await ctx.control.update(
        job.job_id, lambda j: dataclasses.replace(j, scheduling_priority=priority)
    )


@operation("TerminateServiceJob")
async def terminate(ctx: Context, params: Params) -> Any:
    job = await find_job(ctx, params["jobId"])
    if not job.terminal:
        await ctx.control.terminate(job.job_id, params["reason"])
    return {}
