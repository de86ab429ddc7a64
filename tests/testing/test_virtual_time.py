"""The virtual clock under the fixture: ``advance`` jumps to each instant something is due,
and everything due at an instant is done before it returns, exactly at its deadline."""

from __future__ import annotations

import json
import time

import pytest

from batchd.testing import Batchd
from tests.testing.conftest import Queue


def test_an_attempt_timeout_fires_exactly_at_its_deadline(handle: Batchd, queue: Queue) -> None:
    job_id = queue.submit(seconds=7200, timeoutConfig={"attemptDurationSeconds": 600})
    handle.advance(599)
    assert queue.status(job_id) == "RUNNING"
    handle.advance(1)
    job = queue.job(job_id)
    assert (job["status"], job["statusReason"]) == (
        "FAILED",
        "Job attempt duration exceeded timeout",
    )
    assert job["stoppedAt"] - job["startedAt"] == 600_000


def test_a_state_time_limit_fires_exactly_at_its_deadline(handle: Batchd) -> None:
    batch = handle.client()
    batch.create_service_environment(
        serviceEnvironmentName="small",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
    )
    reason = "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE"
    batch.create_job_queue(
        jobQueueName="q",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "small"}],
        jobStateTimeLimitActions=[
            {"reason": reason, "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "TERMINATE"}
        ],
    )
    payload = {
        "TrainingJobName": "big",
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    }
    job_id = batch.submit_service_job(
        jobName="big",
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=json.dumps(payload),
    )["jobId"]
    handle.advance(599)
    assert batch.describe_service_job(jobId=job_id)["status"] == "RUNNABLE"
    handle.advance(1)
    assert batch.describe_service_job(jobId=job_id)["status"] == "FAILED"


def test_advancing_zero_settles_the_present_without_moving_the_clock(
    handle: Batchd, queue: Queue
) -> None:
    before = handle.now
    job_id = queue.submit(seconds=60)
    assert queue.status(job_id) == "SUBMITTED"
    handle.advance()
    assert queue.status(job_id) == "RUNNING"
    assert handle.now == before


def test_a_day_of_back_to_back_jobs_takes_a_few_cycles_each(handle: Batchd) -> None:
    queue = Queue(handle, instances=1)
    job_ids = [queue.submit(f"job-{n}", seconds=3600) for n in range(24)]
    started = time.perf_counter()
    cycles = handle.advance(24 * 3600)
    assert [queue.status(j) for j in job_ids] == ["SUCCEEDED"] * 24
    assert cycles < 24 * 10
    assert time.perf_counter() - started < 5  # a day, not a day's worth of ticks


def test_time_does_not_go_back(handle: Batchd) -> None:
    with pytest.raises(ValueError, match="does not go back"):
        handle.advance(-1)


def test_without_advance_nothing_moves_on_the_wall_clock(handle: Batchd, queue: Queue) -> None:
    job_id = queue.submit(seconds=0)
    time.sleep(0.2)
    assert queue.status(job_id) == "SUBMITTED"
