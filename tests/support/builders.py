"""Create the resources most tests need, through the real API."""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import payload, wait_for

CAPACITY_UNIT_TYPES = ("ml.m5.large", "ml.g5.xlarge")


def fifo_queue(batch: Any, name: str = "q", max_capacity: int = 5, priority: int = 1) -> str:
    env = f"{name}-env"
    batch.create_service_environment(
        serviceEnvironmentName=env,
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": max_capacity, "capacityUnit": "NUM_INSTANCES"}],
    )
    batch.create_job_queue(
        jobQueueName=name,
        jobQueueType="SAGEMAKER_TRAINING",
        priority=priority,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env}],
    )
    return name


def unique(prefix: str) -> str:
    """A resource or job name no other test of a shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def environment(
    batch: Any,
    name: str,
    *,
    state: str = "DISABLED",
    limits: Sequence[tuple[int, str]] = ((5, "NUM_INSTANCES"),),
    **extra: Any,
) -> str:
    """A service environment; DISABLED by default, so nothing is ever dispatched into it."""
    return str(
        batch.create_service_environment(
            serviceEnvironmentName=name,
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            state=state,
            capacityLimits=[{"maxCapacity": m, "capacityUnit": u} for m, u in limits],
            **extra,
        )["serviceEnvironmentArn"]
    )


def parked_queue(
    batch: Any,
    name: str,
    *,
    policy_arn: str | None = None,
    limits: Sequence[tuple[int, str]] = ((5, "NUM_INSTANCES"),),
    **extra: Any,
) -> str:
    """A job queue on its own DISABLED environment: jobs are accepted and stay RUNNABLE."""
    env = environment(batch, f"{name}-env", limits=limits)
    if policy_arn is not None:
        extra["schedulingPolicyArn"] = policy_arn
    batch.create_job_queue(
        jobQueueName=name,
        jobQueueType="SAGEMAKER_TRAINING",
        priority=extra.pop("priority", 1),
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env}],
        **extra,
    )
    return name


def fairshare_policy(batch: Any, name: str, **fairshare: Any) -> str:
    return str(batch.create_scheduling_policy(name=name, fairsharePolicy=fairshare)["arn"])


def quota_policy(batch: Any, name: str) -> str:
    return str(
        batch.create_scheduling_policy(
            name=name, quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}
        )["arn"]
    )


def fair_queue(batch: Any, name: str) -> str:
    """A parked fair-share queue (jobs need a shareIdentifier)."""
    return parked_queue(batch, name, policy_arn=fairshare_policy(batch, f"{name}-policy"))


def quota_queue(batch: Any, name: str, units: Sequence[str] = CAPACITY_UNIT_TYPES) -> str:
    """A parked quota-management queue: instance-type limits and a quota share policy."""
    return parked_queue(
        batch,
        name,
        policy_arn=quota_policy(batch, f"{name}-policy"),
        limits=[(10, unit) for unit in units],
    )


def quota_share(
    batch: Any,
    queue: str,
    name: str,
    *,
    limits: Sequence[tuple[int, str]] = ((2, "ml.m5.large"),),
    strategy: str = "RESERVE",
    **extra: Any,
) -> str:
    return str(
        batch.create_quota_share(
            quotaShareName=name,
            jobQueue=queue,
            capacityLimits=[{"maxCapacity": m, "capacityUnit": u} for m, u in limits],
            resourceSharingConfiguration={"strategy": strategy},
            preemptionConfiguration={"inSharePreemption": "DISABLED"},
            **extra,
        )["quotaShareArn"]
    )


def submit(batch: Any, queue: str, name: str = "job", **extra: Any) -> dict[str, Any]:
    extra.setdefault("serviceRequestPayload", payload())
    response: dict[str, Any] = batch.submit_service_job(
        jobName=name, jobQueue=queue, serviceJobType="SAGEMAKER_TRAINING", **extra
    )
    return response


def queued(batch: Any, queue: str, name: str = "job", **extra: Any) -> dict[str, Any]:
    """Submit to a parked queue and wait until the runtime has admitted the job (RUNNABLE)."""
    job = submit(batch, queue, name, **extra)
    wait_for(lambda: batch.describe_service_job(jobId=job["jobId"])["status"] == "RUNNABLE")
    return job


def submit_many(
    batch: Any, queue: str, names: Sequence[str], workers: int = 8, **extra: Any
) -> list[str]:
    """Submit one job per name concurrently (clients are thread-safe); their ids in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = pool.map(lambda n: submit(batch, queue, n, **extra)["jobId"], names)
        return [str(job_id) for job_id in done]


def post_many(url: str, path: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST each body over one kept-alive connection, bypassing boto3's per-call cost.

    For tests that need hundreds of jobs as set-up; each answer must be a 200.
    """
    host = url.split("://", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    answers: list[dict[str, Any]] = []
    try:
        for body in bodies:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            assert response.status == 200, data
            answers.append(json.loads(data))
    finally:
        conn.close()
    return answers


def all_jobs(batch: Any, queue: str, **filters: Any) -> list[dict[str, Any]]:
    """Every summary ListServiceJobs returns for these arguments, following nextToken."""
    found: list[dict[str, Any]] = []
    for page in batch.get_paginator("list_service_jobs").paginate(jobQueue=queue, **filters):
        found.extend(page["jobSummaryList"])
    return found


@contextlib.contextmanager
def rejected(*needles: str) -> Iterator[pytest.ExceptionInfo[ClientError]]:
    """Expect the call inside to fail as AWS Batch fails: HTTP 400 ``ClientException``.

    Each of ``needles`` must appear in the error message (the field or resource at fault).
    """
    with pytest.raises(ClientError) as info:
        yield info
    response = info.value.response
    assert response["Error"]["Code"] == "ClientException", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    for needle in needles:
        assert needle in response["Error"]["Message"], (needle, response["Error"]["Message"])
