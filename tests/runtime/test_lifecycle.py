"""A job's walk through the status machine, its timestamps and attempts."""

from __future__ import annotations

from tests.support.harness import START_MS, Harness

COMPLETED = "Received status from SageMaker: Training job completed"


def test_job_walks_every_status_to_succeeded_with_its_timestamps(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, name="walk", seconds=10)
    assert h.status(job_id) == "SUBMITTED"
    seen = []
    h.tick()
    seen.append(h.status(job_id))
    for _ in range(2):
        h.tick(1)
        seen.append(h.status(job_id))
    h.tick(10)
    seen.append(h.status(job_id))
    assert seen == ["SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"]
    job = h.job(job_id)
    assert job["createdAt"] == START_MS
    assert job["scheduledAt"] == START_MS
    assert job["startedAt"] == START_MS + 2000
    assert job["stoppedAt"] == START_MS + 12000
    assert job["statusReason"] == COMPLETED
    assert job["isTerminated"] is False
    [attempt] = job["attempts"]
    assert attempt["statusReason"] == COMPLETED
    assert attempt["startedAt"] == job["startedAt"] and attempt["stoppedAt"] == job["stoppedAt"]
    arn = job["latestAttempt"]["serviceResourceId"]
    assert arn["name"] == "TrainingJobArn"
    assert arn["value"] == attempt["serviceResourceId"]["value"]
    assert arn["value"].startswith(
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/AWSBatchwalk"
    )
    assert len(arn["value"].rsplit("/", 1)[1]) == len("AWSBatchwalk") + 32


def test_scheduled_job_carries_latest_attempt_before_it_runs(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo)
    h.tick()
    job = h.job(job_id)
    assert job["status"] == "SCHEDULED"
    assert job["latestAttempt"]["serviceResourceId"]["name"] == "TrainingJobArn"
    assert job["attempts"] == []
    assert "startedAt" not in job


def test_training_job_name_fits_sagemaker_limit(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, name="a_very_long_training_job_name_that_goes_on_and_on")
    h.tick()
    name = h.job(job_id)["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    assert len(name) <= 63
    assert name.startswith("AWSBatcha-very-long-training-j")
    assert all(c.isalnum() or c == "-" for c in name)


def test_job_without_resource_config_needs_no_capacity(h: Harness) -> None:
    h.environment("tiny", {"NUM_INSTANCES": 1})
    h.queue("q", "tiny")
    big = h.submit("q", instances=1, seconds=100)
    serverless = h.submit("q", instances=0)
    h.tick()
    assert h.status(big) == "SCHEDULED"
    assert h.status(serverless) == "SCHEDULED"
    assert h.job(serverless).get("capacityUsage", []) == []
