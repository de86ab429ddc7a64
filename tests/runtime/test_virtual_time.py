"""The real runtime on a virtual clock: ``advance`` jumps between the times something is due,
and everything due happens at its exact time, in a handful of cycles."""

from __future__ import annotations

from batchd.runtime.virtual_time import advance
from tests.support.harness import START_MS, Harness

RUNNING = ("SCHEDULED", "STARTING", "RUNNING")
HOUR_MS = 3_600_000


def run_for(h: Harness, seconds: float) -> int:
    return h.run(advance(h.runtime, h.clock, h.clock.now + int(seconds * 1000)))


def test_an_hour_long_job_ends_after_an_hour_in_a_handful_of_cycles(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, name="long", seconds=3600)
    cycles = run_for(h, 3599)
    assert h.status(job_id) == "RUNNING"
    cycles += run_for(h, 1)
    job = h.job(job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["stoppedAt"] == START_MS + HOUR_MS
    assert cycles < 20


def test_without_advance_nothing_moves(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, name="still", seconds=1)
    assert h.status(job_id) == "SUBMITTED"
    run_for(h, 0)  # the current instant settles: admitted, dispatched, started
    assert h.status(job_id) == "RUNNING"
    assert h.clock.now == START_MS


def test_jobs_queued_behind_capacity_start_as_each_one_ends(h: Harness) -> None:
    # Given one instance and three 10-minute jobs
    h.environment("one", {"NUM_INSTANCES": 1})
    h.queue("q1", "one")
    ids = [h.submit("q1", name=f"j{i}", seconds=600) for i in range(3)]
    run_for(h, 3 * 600)
    # Then each started exactly when the one before it ended
    jobs = [h.job(j) for j in ids]
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 3
    assert [j["startedAt"] - START_MS for j in jobs] == [0, 600_000, 1_200_000]


def test_an_attempt_timeout_fires_at_its_deadline(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, name="slow", seconds=3600, timeoutConfig={"attemptDurationSeconds": 90})
    run_for(h, 600)
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert job["stoppedAt"] == START_MS + 90_000


def test_a_state_time_limit_fires_when_it_is_due(h: Harness) -> None:
    # Given a head that can never fit and a 10-minute limit on that reason
    h.environment("small", {"NUM_INSTANCES": 1})
    h.queue(
        "limited",
        "small",
        jobStateTimeLimitActions=[
            {
                "reason": "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
                "state": "RUNNABLE",
                "maxTimeSeconds": 600,
                "action": "TERMINATE",
            }
        ],
    )
    job_id = h.submit("limited", name="huge", instances=4)
    run_for(h, 3600)
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["stoppedAt"] == START_MS + 600_000
