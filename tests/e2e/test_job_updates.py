"""UpdateServiceJob and TerminateServiceJob on queued jobs (spec §3.4, §3.5, §5.3).

Jobs sit in a queue on a DISABLED service environment, so they are never dispatched.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.support.builders import (
    all_jobs,
    fair_queue,
    parked_queue,
    queued,
    rejected,
    submit,
    unique,
)
from tests.support.waiting import clock_passes

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"


@pytest.fixture(scope="module")
def queue(shared_batch: Any) -> str:
    return parked_queue(shared_batch, "parked")


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    job = dict(batch.describe_service_job(jobId=job_id))
    job.pop("ResponseMetadata")
    return job


def test_update_sets_the_scheduling_priority_by_id_or_arn(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue, "prio", schedulingPriority=1)
    out = shared_batch.update_service_job(jobId=job["jobId"], schedulingPriority=9999)
    assert (out["jobId"], out["jobArn"], out["jobName"]) == (job["jobId"], job["jobArn"], "prio")
    assert describe(shared_batch, job["jobId"])["schedulingPriority"] == 9999
    shared_batch.update_service_job(jobId=job["jobArn"], schedulingPriority=0)
    assert describe(shared_batch, job["jobId"])["schedulingPriority"] == 0


def test_update_of_a_job_submitted_without_priority_sets_one(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue)
    assert "schedulingPriority" not in describe(shared_batch, job["jobId"])
    shared_batch.update_service_job(jobId=job["jobId"], schedulingPriority=5)
    assert describe(shared_batch, job["jobId"])["schedulingPriority"] == 5


def test_update_in_a_fair_share_queue_keeps_the_share(shared_batch: Any) -> None:
    fair = fair_queue(shared_batch, unique("fs"))
    job = submit(shared_batch, fair, shareIdentifier="teamA", schedulingPriority=3)
    shared_batch.update_service_job(jobId=job["jobId"], schedulingPriority=7)
    found = describe(shared_batch, job["jobId"])
    assert (found["schedulingPriority"], found["shareIdentifier"]) == (7, "teamA")


@pytest.mark.parametrize("priority", [-1, 10000])
def test_an_out_of_range_priority_is_refused_and_changes_nothing(
    shared_batch: Any, queue: str, priority: int
) -> None:
    job = submit(shared_batch, queue, schedulingPriority=4)
    with rejected("schedulingPriority"):
        shared_batch.update_service_job(jobId=job["jobId"], schedulingPriority=priority)
    assert describe(shared_batch, job["jobId"])["schedulingPriority"] == 4


def test_a_terminal_job_cannot_be_updated(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue, schedulingPriority=4)
    shared_batch.terminate_service_job(jobId=job["jobId"], reason="stop")
    before = describe(shared_batch, job["jobId"])
    with rejected(job["jobId"], "FAILED"):
        shared_batch.update_service_job(jobId=job["jobId"], schedulingPriority=8)
    assert describe(shared_batch, job["jobId"]) == before


def test_terminating_a_queued_job_fails_it_at_once(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue, "doomed")
    before = describe(shared_batch, job["jobId"])
    start = int(time.time() * 1000)
    out = shared_batch.terminate_service_job(jobId=job["jobId"], reason="Changed my mind")
    end = int(time.time() * 1000)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(out) == {"ResponseMetadata"}
    after = describe(shared_batch, job["jobId"])
    assert after["status"] == "FAILED"
    assert after["isTerminated"] is True
    assert after["statusReason"] == "Changed my mind"
    assert start <= after["stoppedAt"] <= end
    assert after["attempts"] == []
    assert "latestAttempt" not in after and "startedAt" not in after
    unchanged = {
        k: v
        for k, v in after.items()
        if k not in ("status", "statusReason", "isTerminated", "stoppedAt")
    }
    assert unchanged == {
        k: v for k, v in before.items() if k not in ("status", "statusReason", "isTerminated")
    }
    failed = all_jobs(shared_batch, queue, jobStatus="FAILED")
    assert job["jobId"] in [j["jobId"] for j in failed]
    summary = next(j for j in failed if j["jobId"] == job["jobId"])
    assert summary["statusReason"] == "Changed my mind"
    assert summary["stoppedAt"] == after["stoppedAt"]


def test_terminate_accepts_the_job_arn(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue)
    shared_batch.terminate_service_job(jobId=job["jobArn"], reason="by arn")
    assert describe(shared_batch, job["jobId"])["statusReason"] == "by arn"


def test_terminating_a_failed_job_again_is_a_no_op(shared_batch: Any, queue: str) -> None:
    job = submit(shared_batch, queue)
    shared_batch.terminate_service_job(jobId=job["jobId"], reason="first")
    before = describe(shared_batch, job["jobId"])
    clock_passes(before["stoppedAt"])  # a second stop would be stamped differently
    out = shared_batch.terminate_service_job(jobId=job["jobId"], reason="second")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert describe(shared_batch, job["jobId"]) == before


@pytest.mark.parametrize(
    "job_id", [str(uuid.uuid4()), f"{ACCOUNT}:service-job/{uuid.uuid4()}", "garbage"]
)
def test_an_unknown_job_cannot_be_terminated_or_updated(shared_batch: Any, job_id: str) -> None:
    with rejected(job_id, "not found"):
        shared_batch.terminate_service_job(jobId=job_id, reason="x")
    with rejected(job_id, "not found"):
        shared_batch.update_service_job(jobId=job_id, schedulingPriority=1)


def test_a_reason_must_be_printable_and_short(shared_batch: Any, queue: str) -> None:
    job = queued(shared_batch, queue)
    before = describe(shared_batch, job["jobId"])
    for reason in ("line\nbreak", "r" * 1025):
        with rejected("reason"):
            shared_batch.terminate_service_job(jobId=job["jobId"], reason=reason)
    assert describe(shared_batch, job["jobId"]) == before
