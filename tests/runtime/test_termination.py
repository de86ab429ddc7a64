"""TerminateServiceJob in every state, and queue / quota-share deletion."""

from __future__ import annotations

import pytest

from tests.support.harness import Harness

STOPPED = "Received status from SageMaker: Training job stopped"


@pytest.mark.parametrize(
    ("ticks", "state"), [(0, "SUBMITTED"), (1, "SCHEDULED"), (2, "STARTING"), (3, "RUNNING")]
)
def test_terminate_ends_the_job_failed_and_terminated(
    h: Harness, fifo: str, ticks: int, state: str
) -> None:
    job_id = h.submit(fifo, seconds=100, retryStrategy={"attempts": 3})
    h.tick(times=ticks)
    assert h.status(job_id) == state
    h.call("TerminateServiceJob", jobId=h.job(job_id)["jobArn"], reason="user asked")
    h.tick(times=2)
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["isTerminated"] is True
    assert job["statusReason"] == "user asked"
    assert "stoppedAt" in job
    if ticks == 0:
        assert job["attempts"] == []
    else:
        [attempt] = job["attempts"]  # never retried
        assert attempt["statusReason"] == STOPPED


def test_terminate_runnable_job_fails_it_at_once(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 1})
    h.queue("q", "env")
    h.submit("q", seconds=100)
    waiting = h.submit("q")
    h.tick()
    assert h.status(waiting) == "RUNNABLE"
    h.call("TerminateServiceJob", jobId=waiting, reason="not needed")
    job = h.job(waiting)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == (
        "FAILED",
        "not needed",
        True,
    )


def test_terminate_releases_capacity_for_the_next_job(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 1})
    h.queue("q", "env")
    first = h.submit("q", seconds=100)
    second = h.submit("q")
    h.tick(times=3)
    h.call("TerminateServiceJob", jobId=first, reason="make room")
    h.tick(times=2)
    assert h.status(first) == "FAILED"
    assert h.status(second) in ("SCHEDULED", "STARTING")


def test_terminate_of_a_finished_job_is_a_no_op(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, seconds=1)
    h.tick(times=3)
    h.tick(1)
    before = h.job(job_id)
    assert before["status"] == "SUCCEEDED"
    assert h.call("TerminateServiceJob", jobId=job_id, reason="late") == {}
    assert h.job(job_id) == before


def test_deleting_a_queue_terminates_its_jobs(h: Harness, fifo: str) -> None:
    running = h.submit(fifo, seconds=100)
    h.tick(times=3)
    h.call("UpdateJobQueue", jobQueue=fifo, state="DISABLED")
    h.call("DeleteJobQueue", jobQueue=fifo)
    h.tick(times=2)
    job = h.job(running)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == (
        "FAILED",
        "Job queue deleted",
        True,
    )


def test_update_priority_is_stored_and_rejected_once_terminal(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, seconds=1)
    out = h.call("UpdateServiceJob", jobId=job_id, schedulingPriority=42)
    assert out["jobId"] == job_id
    assert h.job(job_id)["schedulingPriority"] == 42
