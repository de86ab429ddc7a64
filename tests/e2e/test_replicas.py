"""Two replicas on one PostgreSQL database: one schedules, both serve, the other takes over."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from tests.support.builders import fifo_queue
from tests.support.databases import PG_URL, fresh_database
from tests.support.server import payload, serve, settings_for, wait_for

pytestmark = pytest.mark.postgres

ACTIVE = ("SCHEDULED", "STARTING", "RUNNING")


def submit(batch: Any, seconds: float, name: str = "job") -> str:
    out = batch.submit_service_job(
        jobName=name,
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(environment={"BATCHD_FAKE_DURATION_SECONDS": str(seconds)}),
    )
    return str(out["jobId"])


def test_follower_forwards_and_takes_over_without_double_dispatch(tmp_path: Path) -> None:
    fresh_database("postgres", tmp_path)
    with (
        serve(settings_for(PG_URL, tmp_path / "a")) as leader,
        serve(settings_for(PG_URL, tmp_path / "b")) as follower,
    ):
        via_follower = follower.client()
        via_follower.create_service_environment(
            serviceEnvironmentName="env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}],
        )
        via_follower.create_job_queue(
            jobQueueName="q",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )
        quick = [submit(via_follower, 0.2, f"quick{i}") for i in range(4)]
        long = submit(via_follower, 600, "long")
        leader_view = leader.client()

        def done(job_id: str) -> bool:
            return bool(leader_view.describe_service_job(jobId=job_id)["status"] == "SUCCEEDED")

        wait_for(lambda: all(done(j) for j in quick), timeout=30)
        wait_for(lambda: via_follower.describe_service_job(jobId=long)["status"] in ACTIVE)
        via_follower.tag_resource(
            resourceArn=via_follower.describe_service_job(jobId=long)["jobArn"],
            tags={"via": "follower"},
        )
        wait_for(
            lambda: leader_view.describe_service_job(jobId=long)["tags"] == {"via": "follower"}
        )
        via_follower.terminate_service_job(jobId=long, reason="from the follower")
        job = wait_for(
            lambda: (j := leader_view.describe_service_job(jobId=long))["status"] == "FAILED" and j
        )
        assert (job["statusReason"], job["isTerminated"]) == ("from the follower", True)
        for job_id in quick:
            attempts = leader_view.describe_service_job(jobId=job_id)["attempts"]
            assert len(attempts) == 1  # dispatched once, by one replica
        survivor = submit(via_follower, 600, "survivor")
        wait_for(lambda: via_follower.describe_service_job(jobId=survivor)["status"] in ACTIVE)
        leader.stop()  # the leader goes away with a training job in flight
        # The follower takes the lead, adopts the attempt in flight and finishes new work.
        after = submit(via_follower, 0.2, "after")
        wait_for(
            lambda: via_follower.describe_service_job(jobId=after)["status"] == "SUCCEEDED",
            timeout=30,
        )
        adopted = via_follower.describe_service_job(jobId=survivor)
        assert adopted["status"] == "RUNNING" and adopted["attempts"] == []


def test_a_submit_on_a_follower_wakes_the_leader_at_once(tmp_path: Path) -> None:
    # Given replicas whose scheduler would otherwise look only every 10 s
    fresh_database("postgres", tmp_path)
    slow = {"tick_seconds": 10.0}
    with (
        serve(settings_for(PG_URL, tmp_path / "a", **slow)) as leader,
        serve(settings_for(PG_URL, tmp_path / "b", **slow)) as follower,
    ):
        health = [
            json.loads(urlopen(f"{s.url}/batchd/v1/health").read()) for s in (leader, follower)
        ]
        assert [h["leader"] for h in health] == [True, False]
        assert health[0]["epoch"] >= 1 and health[0]["leaderSince"] is not None
        assert health[1]["epoch"] is None and health[1]["database"] == health[0]["database"]
        assert "postgres@" in health[0]["database"]
        via_follower = follower.client()
        fifo_queue(via_follower, "q", 2)
        time.sleep(0.2)  # let the configuration reload the follower asked for go through
        # When a job is submitted to the follower
        started = time.monotonic()
        job_id = submit(via_follower, 600, "woken")
        # Then the leader, told by PostgreSQL, dispatches it well before its next tick
        wait_for(
            lambda: via_follower.describe_service_job(jobId=job_id)["status"] in ACTIVE,
            timeout=5,
            interval=0.01,
        )
        assert time.monotonic() - started < 3.0
