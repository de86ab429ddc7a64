"""The handle of batchd.testing for this project's own tests of it, whether or not the
plugin is installed (an editable install of another checkout has no entry point)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from batchd.testing import Batchd, mock_batchd


@pytest.fixture
def handle() -> Iterator[Batchd]:
    with mock_batchd() as started:
        yield started


class Queue:
    """A queue on a service environment, and submits to it, through boto3 as a user would."""

    def __init__(self, handle: Batchd, instances: int = 4) -> None:
        self.batch = handle.client()
        self.batch.create_service_environment(
            serviceEnvironmentName="env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": instances, "capacityUnit": "NUM_INSTANCES"}],
        )
        self.batch.create_job_queue(
            jobQueueName="q",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )

    def submit(
        self,
        name: str = "job",
        seconds: float = 60,
        environment: dict[str, str] | None = None,
        training_job_name: str | None = None,
        **extra: Any,
    ) -> str:
        payload = {
            "TrainingJobName": training_job_name or name,
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "Environment": {"BATCHD_FAKE_DURATION_SECONDS": str(seconds), **(environment or {})},
        }
        return str(
            self.batch.submit_service_job(
                jobName=name,
                jobQueue="q",
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=json.dumps(payload),
                **extra,
            )["jobId"]
        )

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.batch.describe_service_job(jobId=job_id)
        return found

    def status(self, job_id: str) -> str:
        return str(self.job(job_id)["status"])

    def reasons(self, job_id: str) -> list[str]:
        return [str(a.get("statusReason")) for a in self.job(job_id).get("attempts", [])]


@pytest.fixture
def queue(handle: Batchd) -> Queue:
    return Queue(handle)
