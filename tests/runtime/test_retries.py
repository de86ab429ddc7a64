"""retryStrategy with evaluateOnExit, launch errors, capacity errors, attempt timeouts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.harness import Harness

ALGO = "AlgorithmError: loss is NaN"


def run_to_end(h: Harness, job_id: str, max_ticks: int = 60) -> dict[str, Any]:
    for _ in range(max_ticks):
        h.tick(1)
        job = h.job(job_id)
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
    raise AssertionError(f"job {job_id} did not finish: {h.job(job_id)['status']}")


@pytest.mark.parametrize(
    ("strategy", "attempts"),
    [
        (None, 1),
        ({"attempts": 3}, 3),
        ({"attempts": 3, "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "*"}]}, 1),
        (
            {
                "attempts": 4,
                "evaluateOnExit": [
                    {"action": "Retry", "onStatusReason": "Received status from SageMaker: Algo*"},
                    {"action": "EXIT", "onStatusReason": "*"},
                ],
            },
            4,
        ),
        (
            {
                "attempts": 4,
                "evaluateOnExit": [
                    {"action": "RETRY", "onStatusReason": "*ClientError*"},
                    {"action": "exit", "onStatusReason": "*"},
                ],
            },
            1,
        ),
        ({"attempts": 2, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "nothing*"}]}, 2),
    ],
)
def test_failed_attempts_follow_the_retry_strategy(
    h: Harness, fifo: str, strategy: dict[str, Any] | None, attempts: int
) -> None:
    extra: dict[str, Any] = {"retryStrategy": strategy} if strategy else {}
    job_id = h.submit(fifo, seconds=1, outcome="Failed", failure=ALGO, **extra)
    job = run_to_end(h, job_id)
    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == attempts
    reason = f"Received status from SageMaker: {ALGO}"
    assert job["statusReason"] == reason
    assert all(a["statusReason"] == reason for a in job["attempts"])
    names = {a["serviceResourceId"]["value"] for a in job["attempts"]}
    assert len(names) == attempts  # every attempt is a new training job
    assert job["isTerminated"] is False


def test_retried_job_succeeds_when_a_later_attempt_does(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, seconds=1, outcome="Failed", retryStrategy={"attempts": 2})
    h.tick(times=3)
    # the payload is fixed per job, so steer the second attempt through the backend's script
    assert h.status(job_id) == "RUNNING"
    job = run_to_end(h, job_id)
    assert len(job["attempts"]) == 2


def test_launch_error_is_a_failed_attempt(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, launch_error="ValidationException: RoleArn is not valid")
    h.tick()
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == (
        "Received status from SageMaker: ValidationException: RoleArn is not valid"
    )
    assert len(job["attempts"]) == 1


def test_capacity_error_redispatches_without_consuming_an_attempt(h: Harness, fifo: str) -> None:
    job_id = h.submit(
        fifo, seconds=1, outcome="Failed", failure="CapacityError: no ml.m5.large available"
    )
    h.tick(times=3)
    first = h.job(job_id)["latestAttempt"]["serviceResourceId"]["value"]
    h.tick(1)  # the training job fails for capacity; the job is dispatched again at once
    job = h.job(job_id)
    assert job["status"] == "SCHEDULED"
    assert job["attempts"] == []
    assert job["latestAttempt"]["serviceResourceId"]["value"] != first


def test_capacity_time_limit_counts_time_across_failed_dispatches(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 5})
    limit = {
        "reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "state": "RUNNABLE",
        "maxTimeSeconds": 600,
        "action": "TERMINATE",
    }
    h.queue("q", "env", jobStateTimeLimitActions=[limit])
    job_id = h.submit("q", seconds=30, outcome="Failed", failure="CapacityError: none left")
    for _ in range(19):  # about 20 failed dispatches of ~32 s each
        h.tick(times=3)
        h.tick(30)
        assert h.status(job_id) in ("SCHEDULED", "STARTING", "RUNNING", "RUNNABLE")
    h.tick(times=3)
    h.tick(30)
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == (
        "Terminated by JobStateTimeLimit action due to reason: "
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    )
    assert job["attempts"] == []


def test_attempt_timeout_stops_the_job_without_retry(h: Harness, fifo: str) -> None:
    job_id = h.submit(
        fifo,
        seconds=100,
        retryStrategy={"attempts": 5},
        timeoutConfig={"attemptDurationSeconds": 5},
    )
    h.tick(times=3)
    h.tick(4)
    assert h.status(job_id) == "RUNNING"
    h.tick(1)  # the stop is requested at 5 s
    h.tick()  # and observed
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["isTerminated"] is True
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1
    assert (
        job["attempts"][0]["statusReason"] == "Received status from SageMaker: Training job stopped"
    )
