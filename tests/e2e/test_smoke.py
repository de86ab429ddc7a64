"""The shortest path through a real server: create, submit, describe, list."""

from __future__ import annotations

from typing import Any

from tests.support.builders import fifo_queue
from tests.support.server import RunningServer, payload


def test_submitted_job_is_described_and_listed(batch: Any) -> None:
    queue = fifo_queue(batch)
    submitted = batch.submit_service_job(
        jobName="first",
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(environment={"BATCHD_FAKE_DURATION_SECONDS": "30"}),
    )
    job = batch.describe_service_job(jobId=submitted["jobArn"])
    assert job["jobId"] == submitted["jobId"]
    assert job["jobQueue"].endswith(":job-queue/q")
    assert job["attempts"] == [] and job["isTerminated"] is False and job["tags"] == {}
    listed = batch.list_service_jobs(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["FIRST"]}]
    )
    assert [j["jobId"] for j in listed["jobSummaryList"]] == [submitted["jobId"]]


def test_aws_cli_submits_describes_and_lists(server: RunningServer) -> None:
    fifo_queue(server.client())
    out = server.aws(
        "batch",
        "submit-service-job",
        "--job-name",
        "cli-job",
        "--job-queue",
        "q",
        "--service-job-type",
        "SAGEMAKER_TRAINING",
        "--service-request-payload",
        payload(),
    )
    import json

    job_id = json.loads(out.stdout)["jobId"]
    described = json.loads(server.aws("batch", "describe-service-job", "--job-id", job_id).stdout)
    assert described["jobName"] == "cli-job"
    listed = json.loads(
        server.aws(
            "batch",
            "list-service-jobs",
            "--job-queue",
            "q",
            "--filters",
            "name=JOB_NAME,values=cli-job",
        ).stdout
    )
    assert [j["jobId"] for j in listed["jobSummaryList"]] == [job_id]
