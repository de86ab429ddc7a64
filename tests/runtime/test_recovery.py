"""A restart rebuilds the runtime from the database; nothing is stuck or counted twice."""

from __future__ import annotations

from tests.support.harness import START_MS, Harness


def test_a_restarted_runtime_adopts_running_attempts_and_keeps_queued_jobs(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 2})
    h.queue("q", "env")
    running = [h.submit("q", name=f"run{i}", seconds=100) for i in range(2)]
    queued = h.submit("q", name="queued", seconds=1)
    h.tick(times=3)
    assert [h.status(j) for j in (*running, queued)] == ["RUNNING", "RUNNING", "RUNNABLE"]
    late = h.submit("q", name="late", seconds=1)
    # When the server dies and comes back (a new runtime, a new fake backend)
    h.restart()
    h.tick(50)
    # Then the running attempts were adopted: still running, on their first attempt
    for job_id in running:
        job = h.job(job_id)
        assert job["status"] == "RUNNING"
        assert job["attempts"] == []
    # And they end when they would have ended; capacity was never counted twice
    assert h.status(queued) == "RUNNABLE"
    h.tick(50)
    assert [h.job(j)["stoppedAt"] for j in running] == [START_MS + 100_000] * 2
    for _ in range(4):
        h.tick(1)
    assert h.status(queued) == "SUCCEEDED"
    assert h.status(late) in ("SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED")
