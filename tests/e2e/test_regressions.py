"""Behaviours found wrong in review, pinned so they stay right."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.builders import (
    all_jobs,
    parked_queue,
    quota_queue,
    quota_share,
    rejected,
    submit,
)
from tests.support.server import RunningServer


def test_a_recreated_queue_starts_empty(batch: Any) -> None:
    parked_queue(batch, "again")
    old = submit(batch, "again", name="old")["jobId"]
    batch.update_job_queue(jobQueue="again", state="DISABLED")
    batch.delete_job_queue(jobQueue="again")
    batch.create_job_queue(
        jobQueueName="again",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "again-env"}],
    )
    assert all_jobs(batch, "again", filters=[{"name": "JOB_NAME", "values": ["old"]}]) == []
    kept = batch.describe_service_job(jobId=old)  # the old job is still there, terminated
    assert (kept["status"], kept["statusReason"]) == ("FAILED", "Job queue deleted")


def test_untag_refuses_reserved_keys(batch: Any) -> None:
    arn = batch.describe_job_queues(jobQueues=[parked_queue(batch, "tagged")])["jobQueues"][0][
        "jobQueueArn"
    ]
    with rejected("aws:"):
        batch.untag_resource(resourceArn=arn, tagKeys=["aws:batch:owner"])


def test_quota_share_tag_errors_name_the_resource_arn(batch: Any) -> None:
    queue = quota_queue(batch, "qq")
    arn = quota_share(batch, queue, "present")
    with rejected("resourceArn"):
        batch.tag_resource(resourceArn=arn.replace("present", "absent"), tags={"k": "v"})


def test_a_target_header_on_a_batch_path_is_still_batch(server: RunningServer) -> None:
    answer = httpx.post(
        f"{server.url}/v1/describejobqueues",
        json={},
        headers={"X-Amz-Target": "SageMaker.DescribeTrainingJob"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert "jobQueues" in answer.json()
