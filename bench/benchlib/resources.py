"""Create what a submit needs: a batchd queue, or moto's compute environment, queue, definition."""

from __future__ import annotations

import uuid
from typing import Any

from bench.benchlib.signed import batch_client

__all__ = ["batchd_queue", "moto_queue"]


def batchd_queue(
    endpoint: str,
    name: str = "bench",
    *,
    state: str = "DISABLED",
    capacity: int = 1,
    fairshare: bool = False,
) -> str:
    """A job queue on its own service environment. DISABLED: jobs are accepted, stay queued."""
    batch = batch_client(endpoint)
    batch.create_service_environment(
        serviceEnvironmentName=f"{name}-env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        state=state,
        capacityLimits=[{"maxCapacity": capacity, "capacityUnit": "NUM_INSTANCES"}],
    )
    extra: dict[str, Any] = {}
    if fairshare:
        policy = batch.create_scheduling_policy(name=f"{name}-policy", fairsharePolicy={})
        extra["schedulingPolicyArn"] = policy["arn"]
    batch.create_job_queue(
        jobQueueName=name,
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": f"{name}-env"}],
        **extra,
    )
    return name


def moto_queue(endpoint: str, name: str = "bench") -> tuple[str, str]:
    """moto's closest equivalent: an UNMANAGED compute environment, a queue, a job definition."""
    batch = batch_client(endpoint)
    iam = batch_client(endpoint, "iam")
    role = iam.create_role(
        RoleName=f"{name}-role-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    env = batch.create_compute_environment(
        computeEnvironmentName=f"{name}-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=f"{name}-def",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )
    return name, f"{name}-def"
