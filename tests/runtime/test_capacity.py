"""Capacity limits, head-of-line blocking, misconfiguration and queue priority."""

from __future__ import annotations

import pytest

from tests.support.harness import Harness

MAX_RESOURCE = (
    "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service environment(s) associated with "
    "the job queue cannot meet the capacity requirement of the job."
)


def test_sixth_job_waits_until_a_slot_frees(h: Harness, fifo: str) -> None:
    jobs = [h.submit(fifo, name=f"j{i}", seconds=5 + i) for i in range(6)]
    h.tick()
    assert [h.status(j) for j in jobs].count("SCHEDULED") == 5
    assert h.status(jobs[5]) == "RUNNABLE"
    assert "statusReason" not in h.job(jobs[5])  # waiting its turn is not being blocked
    h.tick(1, times=2)
    h.tick(4)  # j0 finishes at 5 s
    h.tick()
    assert h.status(jobs[0]) == "SUCCEEDED"
    assert h.status(jobs[5]) in ("SCHEDULED", "STARTING")


def test_job_larger_than_environment_blocks_with_misconfiguration(h: Harness, fifo: str) -> None:
    big = h.submit(fifo, name="big", instances=6)
    small = h.submit(fifo, name="small", instances=1)
    h.tick()
    job = h.job(big)
    assert job["status"] == "RUNNABLE"
    assert job["statusReason"] == MAX_RESOURCE
    assert h.status(small) == "RUNNABLE"  # FIFO: head-of-line blocking


def test_time_limit_action_terminates_blocked_head_and_unblocks_queue(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 5})
    h.queue(
        "q",
        "env",
        jobStateTimeLimitActions=[
            {
                "reason": "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
                "state": "RUNNABLE",
                "maxTimeSeconds": 600,
                "action": "TERMINATE",
            }
        ],
    )
    big = h.submit("q", name="big", instances=6)
    small = h.submit("q", name="small")
    h.tick()
    h.tick(599)
    assert h.status(big) == "RUNNABLE"
    h.tick(1)
    job = h.job(big)
    assert job["status"] == "FAILED"
    assert job["isTerminated"] is True
    assert job["statusReason"] == (
        "Terminated by JobStateTimeLimit action due to reason: "
        "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE"
    )
    assert h.status(small) == "SCHEDULED"  # the next job advances in the same pass


def test_higher_priority_queue_is_served_first(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 1})
    h.queue("low", "env", priority=1)
    h.queue("high", "env", priority=10)
    low = h.submit("low", name="low")
    high = h.submit("high", name="high")
    h.tick()
    assert (h.status(high), h.status(low)) == ("SCHEDULED", "RUNNABLE")


def test_lower_priority_queue_fills_room_the_higher_head_cannot_use(h: Harness) -> None:
    h.environment("env", {"NUM_INSTANCES": 3})
    h.queue("low", "env", priority=1)
    h.queue("high", "env", priority=10)
    h.submit("high", name="fill", instances=2, seconds=100)
    h.tick()
    wide = h.submit("high", name="wide", instances=2)
    narrow = h.submit("low", name="narrow", instances=1)
    h.tick()
    assert (h.status(wide), h.status(narrow)) == ("RUNNABLE", "SCHEDULED")


@pytest.mark.parametrize("what", ["environment", "environment-state"])
def test_disabled_environment_holds_jobs_runnable(h: Harness, what: str) -> None:
    h.environment("env", {"NUM_INSTANCES": 5}, state="DISABLED")
    h.queue("q", "env")
    job = h.submit("q")
    h.tick(times=3)
    assert h.status(job) == "RUNNABLE"
    h.call("UpdateServiceEnvironment", serviceEnvironment="env", state="ENABLED")
    h.tick()
    assert h.status(job) == "SCHEDULED"


def test_disabled_queue_still_runs_what_it_holds(h: Harness, fifo: str) -> None:
    job = h.submit(fifo)
    h.call("UpdateJobQueue", jobQueue=fifo, state="DISABLED")
    h.tick()
    assert h.status(job) == "SCHEDULED"


def test_lowering_capacity_does_not_stop_running_jobs(h: Harness, fifo: str) -> None:
    jobs = [h.submit(fifo, name=f"j{i}", seconds=100) for i in range(4)]
    h.tick(times=3)
    h.call(
        "UpdateServiceEnvironment",
        serviceEnvironment="env",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
    )
    late = h.submit(fifo, name="late")
    h.tick(1, times=2)
    assert [h.status(j) for j in jobs] == ["RUNNING"] * 4
    assert h.status(late) == "RUNNABLE"
