"""Create the resources most tests need, through the real API."""

from __future__ import annotations

from typing import Any


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
