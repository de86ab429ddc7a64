"""A restart rebuilds the runtime from the database; nothing is stuck or counted twice."""

from __future__ import annotations

from tests.support.harness import Harness

LOST = "Received status from SageMaker: InternalServerError: training job"


def test_restart_keeps_queued_jobs_and_retries_lost_training_jobs(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 2})
    h.queue("q", "env")
    retried = h.submit("q", name="retried", seconds=100, retryStrategy={"attempts": 2})
    failed = h.submit("q", name="failed", seconds=100)
    queued = h.submit("q", name="queued", seconds=1)
    submitted_only = None
    h.tick(times=3)
    assert [h.status(j) for j in (retried, failed, queued)] == ["RUNNING", "RUNNING", "RUNNABLE"]
    submitted_only = h.submit("q", name="late", seconds=1)
    # When the server dies (the fake backend forgets its training jobs) and comes back
    h.restart()
    h.tick()
    # Then the lost attempts are failed with a clear reason and retried per their strategy
    job = h.job(failed)
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith(LOST)
    again = h.job(retried)
    assert again["status"] == "SCHEDULED"
    assert len(again["attempts"]) == 1 and again["attempts"][0]["statusReason"].startswith(LOST)
    # And capacity is accounted right: one slot was freed by the failure, one by the retry
    assert h.status(queued) == "SCHEDULED"
    assert h.status(submitted_only) == "RUNNABLE"
    for _ in range(5):
        h.tick(1)
    assert h.status(queued) == "SUCCEEDED"
    assert h.status(submitted_only) in ("SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED")
