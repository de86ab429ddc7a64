"""ServiceJob.with_status: the fast copy admission uses is the same job as dataclasses.replace."""

from __future__ import annotations

import dataclasses

from batchd.domain.jobs import ServiceJob, ServiceJobRetryStrategy
from batchd.domain.status import JobStatus


def test_with_status_equals_replace_and_leaves_the_original_alone() -> None:
    job = ServiceJob(
        job_id="j",
        job_arn="arn:aws:batch:us-east-1:123456789012:service-job/j",
        job_name="n",
        job_queue="arn:aws:batch:us-east-1:123456789012:job-queue/q",
        service_request_payload="{}",
        created_at=1,
        seq=1,
        retry_strategy=ServiceJobRetryStrategy(attempts=2),
        tags={"team": "a"},
    )
    admitted = job.with_status(JobStatus.RUNNABLE)
    assert admitted == dataclasses.replace(job, status=JobStatus.RUNNABLE)
    assert type(admitted) is ServiceJob
    assert job.status is JobStatus.SUBMITTED and admitted.status is JobStatus.RUNNABLE
    assert admitted.retry_strategy is job.retry_strategy
