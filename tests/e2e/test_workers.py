"""``batchd serve --workers 2``: two processes share the port; one schedules, both accept."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from tests.support.process import ServerProcess
from tests.support.server import payload, wait_for


def test_two_workers_run_every_job_exactly_once(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", db_url, "fake", "--workers", "2")
    server.start()
    try:
        setup = server.client()
        setup.create_service_environment(
            serviceEnvironmentName="env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": 3, "capacityUnit": "NUM_INSTANCES"}],
        )
        setup.create_job_queue(
            jobQueueName="q",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )

        def submit(i: int) -> str:
            # A client per job: a new connection, so the kernel spreads them over workers.
            out = server.client().submit_service_job(
                jobName=f"w{i}",
                jobQueue="q",
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=payload(environment={"BATCHD_FAKE_DURATION_SECONDS": "0.1"}),
            )
            return str(out["jobId"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(submit, range(40)))

        def finished() -> bool:
            states = [setup.describe_service_job(jobId=j)["status"] for j in jobs]
            return all(s == "SUCCEEDED" for s in states)

        wait_for(finished, timeout=60, interval=0.2)
        for job_id in jobs:
            assert len(setup.describe_service_job(jobId=job_id)["attempts"]) == 1
        usage = setup.get_job_queue_snapshot(jobQueue="q")["queueUtilization"]
        assert usage.get("totalCapacityUsage", []) == []
    finally:
        server.stop()
