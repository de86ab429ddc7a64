"""A submit storm, SIGKILL at a random moment, restart: no acknowledged job lost or doubled."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.process import ServerProcess
from tests.support.server import payload

CLIENTS = 4


def resubmit(batch: Any, name: str, token: str) -> Any:
    """Submit the job called ``name`` with ``token``; the same call a retrying client makes."""
    return batch.submit_service_job(
        jobName=name,
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(
            name=name, environment={"BATCHD_FAKE_DURATION_SECONDS": "600"}
        ),
        clientToken=token,
    )


def storm(
    server: ServerProcess,
    stop: threading.Event,
    acked: dict[str, tuple[str, str]],
    unknown: list[tuple[str, str]],
    lock: threading.Lock,
    worker: int,
) -> None:
    batch = server.client()
    n = 0
    while not stop.is_set():
        token, name = str(uuid.uuid4()), f"w{worker}-{n}"
        n += 1
        try:
            out = resubmit(batch, name, token)
        except (BotoCoreError, ClientError):
            out = {}
        if "jobId" not in out:
            # The server is gone. A kill between the status line and the body leaves a
            # truncated answer, which botocore reads as an empty result (it does not enforce
            # Content-Length): not an acknowledgement either.
            with lock:
                unknown.append((token, name))
            return
        with lock:
            acked[token] = (out["jobId"], name)


# Two kill points by default; `pytest -m slow` adds eight more.
SEEDS = [1, 2, *(pytest.param(s, marks=pytest.mark.slow) for s in range(3, 11))]


@pytest.mark.parametrize("seed", SEEDS)
def test_acknowledged_jobs_survive_sigkill_exactly_once(
    db_url: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    server = ServerProcess(tmp_path / "data", db_url)
    server.start()
    try:
        batch = server.client()
        batch.create_service_environment(
            serviceEnvironmentName="env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": 3, "capacityUnit": "NUM_INSTANCES"}],
        )
        batch.create_job_queue(
            jobQueueName="q",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )
        acked: dict[str, tuple[str, str]] = {}
        unknown: list[tuple[str, str]] = []
        lock, stop = threading.Lock(), threading.Event()
        threads = [
            threading.Thread(target=storm, args=(server, stop, acked, unknown, lock, i))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.8, 2.0))
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert len(acked) > 20, "the storm never got going"

        server.start()
        batch = server.client(retries=3)
        for job_id, name in acked.values():
            job = batch.describe_service_job(jobId=job_id)
            assert job["jobName"] == name
            assert json.loads(job["serviceRequestPayload"])["TrainingJobName"] == name
        # A client that never heard back retries with the same token: one job, not two.
        for token, name in unknown:
            first = resubmit(batch, name, token)
            again = resubmit(batch, name, token)
            assert first["jobId"] == again["jobId"]
        for token, (job_id, name) in list(acked.items())[:20]:
            replay = resubmit(batch, name, token)
            assert replay["jobId"] == job_id
        names: dict[str, int] = {}
        pager = batch.get_paginator("list_service_jobs")
        for page in pager.paginate(jobQueue="q", filters=[{"name": "JOB_NAME", "values": ["w*"]}]):
            for summary in page["jobSummaryList"]:
                names[summary["jobName"]] = names.get(summary["jobName"], 0) + 1
        assert all(count == 1 for count in names.values())
        assert {name for _, name in acked.values()} <= set(names)
        print(  # the figures of a run, for people reading the output with -s
            f"crash seed {seed}: {len(acked)} acknowledged jobs all found exactly once; "
            f"{len(unknown)} unanswered submits retried without duplicates"
        )
    finally:
        server.stop()
