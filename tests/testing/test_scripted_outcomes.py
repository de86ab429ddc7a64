"""Scripted outcomes: the test decides what the next matching training jobs do, whatever
their payload says; the runtime treats each as it would the same answer from SageMaker."""

from __future__ import annotations

import pytest

from batchd.backends.fake import FakeRun
from batchd.testing import Batchd, Outcome
from tests.testing.conftest import Queue

SAGEMAKER = "Received status from SageMaker: "


@pytest.mark.parametrize(
    ("outcome", "status", "reasons"),
    [
        (Outcome.succeed(after=0), "SUCCEEDED", [SAGEMAKER + "Training job completed"]),
        (Outcome.fail("AlgorithmError: boom"), "FAILED", [SAGEMAKER + "AlgorithmError: boom"]),
        (
            Outcome.lost(reason="InternalServerError: host gone"),
            "FAILED",
            [SAGEMAKER + "InternalServerError: host gone"],
        ),
        (Outcome.stopped(), "FAILED", [SAGEMAKER + "Training job stopped"]),
        (
            Outcome.refused("ValidationException", "bad image"),
            "FAILED",
            [SAGEMAKER + "ValidationException: bad image"],
        ),
    ],
)
def test_a_scripted_outcome_overrides_the_payload(
    handle: Batchd, queue: Queue, outcome: FakeRun, status: str, reasons: list[str]
) -> None:
    handle.script(outcome, name="job")
    job_id = queue.submit(seconds=3600)
    handle.advance(1)
    assert queue.status(job_id) == status
    assert queue.reasons(job_id) == reasons


def test_a_job_scripted_to_succeed_after_two_hours_runs_until_then(
    handle: Batchd, queue: Queue
) -> None:
    handle.script(Outcome.succeed(after=7200))
    job_id = queue.submit(seconds=1)
    handle.advance(7199)
    assert queue.status(job_id) == "RUNNING"
    handle.advance(1)
    assert queue.status(job_id) == "SUCCEEDED"


def test_capacity_errors_requeue_without_using_an_attempt_then_the_payload_decides(
    handle: Batchd, queue: Queue
) -> None:
    rule = handle.script(Outcome.capacity_error(after=30), times=2)
    job_id = queue.submit(seconds=10)
    handle.advance(70)
    assert rule.used == 2
    assert queue.status(job_id) == "SUCCEEDED"
    assert queue.reasons(job_id) == [SAGEMAKER + "Training job completed"]


def test_a_job_meeting_capacity_errors_waits_scheduled_and_never_uses_an_attempt(
    handle: Batchd, queue: Queue
) -> None:
    rule = handle.script(Outcome.capacity_error(after=60), times=None)
    job_id = queue.submit()
    handle.advance(599)
    job = queue.job(job_id)
    assert job["status"] == "SCHEDULED"
    assert job.get("attempts", []) == []
    assert rule.used == 10  # at 0, 60, ... 540 s; each redispatched at once


def test_rules_match_by_name_prefix_tag_and_training_job_name_and_are_used_up_in_order(
    handle: Batchd, queue: Queue
) -> None:
    handle.script(Outcome.fail("AlgorithmError: by tag"), tags={"team": "red"}, times=None)
    handle.script(Outcome.fail("AlgorithmError: by name"), name="nightly-", times=1)
    handle.script(Outcome.fail("AlgorithmError: by training name"), name="tj-", times=1)
    handle.script(Outcome.fail("AlgorithmError: by job name"), name="svc-", times=1)
    red = queue.submit("other", tags={"team": "red"})
    first = queue.submit("nightly-1")
    second = queue.submit("nightly-2")
    by_training_name = queue.submit("plain", training_job_name="tj-7")
    by_job_name = queue.submit("svc-1", training_job_name="model")
    untouched = queue.submit("plain-too", seconds=5)
    handle.advance(60)
    assert queue.reasons(red) == [SAGEMAKER + "AlgorithmError: by tag"]
    assert queue.reasons(first) == [SAGEMAKER + "AlgorithmError: by name"]
    assert queue.status(second) == "SUCCEEDED"
    assert queue.reasons(by_training_name) == [SAGEMAKER + "AlgorithmError: by training name"]
    assert queue.reasons(by_job_name) == [SAGEMAKER + "AlgorithmError: by job name"]
    assert queue.status(untouched) == "SUCCEEDED"


def test_payload_variables_still_decide_when_no_rule_matches(handle: Batchd, queue: Queue) -> None:
    handle.script(Outcome.succeed(), name="someone-else")
    job_id = queue.submit(
        seconds=30,
        environment={
            "BATCHD_FAKE_OUTCOME": "Failed",
            "BATCHD_FAKE_FAILURE_REASON": "AlgorithmError: from the payload",
        },
    )
    handle.advance(29)
    assert queue.status(job_id) == "RUNNING"
    handle.advance(1)
    assert queue.reasons(job_id) == [SAGEMAKER + "AlgorithmError: from the payload"]


def test_a_lost_job_is_retried_by_its_retry_strategy(handle: Batchd, queue: Queue) -> None:
    handle.script(Outcome.lost(after=600))
    job_id = queue.submit(seconds=60, retryStrategy={"attempts": 2})
    handle.advance(600)
    assert queue.status(job_id) == "RUNNING"
    assert len(queue.reasons(job_id)) == 1
    handle.advance(60)
    assert queue.status(job_id) == "SUCCEEDED"


def test_reset_forgets_rules_jobs_and_resources(handle: Batchd, queue: Queue) -> None:
    handle.script(Outcome.fail(), times=None)
    queue.submit()
    handle.advance()
    handle.reset()
    assert queue.batch.describe_job_queues()["jobQueues"] == []
    again = Queue(handle)
    job_id = again.submit(seconds=1)
    handle.advance(1)
    assert again.status(job_id) == "SUCCEEDED"
