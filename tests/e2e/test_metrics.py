"""``GET /metrics``, parsed with prometheus_client's own parser, agrees with the store after a
mixed workload, on one process and on ``--workers 2``; a deleted queue's series go with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.process import ServerProcess
from tests.support.server import payload, serve, settings_for, wait_for

STATUSES = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "SCHEDULED",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
)


def _scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _jobs(metrics: dict[str, Any], queue: str) -> dict[str, float]:
    series = metrics["batchd_service_jobs"]
    return {dict(k)["status"]: v for k, v in series.items() if dict(k)["queue"] == queue}


def _in_store(batch: Any, queue: str) -> dict[str, int]:
    counts = {}
    for status in STATUSES:
        pages = batch.get_paginator("list_service_jobs").paginate(jobQueue=queue, jobStatus=status)
        counts[status] = sum(len(page["jobSummaryList"]) for page in pages)
    return counts


def _workload(batch: Any) -> None:
    """Two instances of capacity: two long jobs run, one waits; two succeed, two fail."""
    batch.create_service_environment(
        serviceEnvironmentName="env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}],
    )
    for queue in ("q", "gone"):
        batch.create_job_queue(
            jobQueueName=queue,
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1 if queue == "q" else 2,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )

    def submit(env: dict[str, str]) -> str:
        return str(
            batch.submit_service_job(
                jobName="j",
                jobQueue="q",
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=payload(environment=env),
            )["jobId"]
        )

    quick = [submit({"BATCHD_FAKE_DURATION_SECONDS": "0"}) for _ in range(2)]
    quick += [
        submit({"BATCHD_FAKE_DURATION_SECONDS": "0", "BATCHD_FAKE_OUTCOME": "Failed"})
        for _ in range(2)
    ]

    def ended() -> bool:
        described = [batch.describe_service_job(jobId=j)["status"] for j in quick]
        return all(s in ("SUCCEEDED", "FAILED") for s in described)

    wait_for(ended, timeout=60)
    long = [submit({"BATCHD_FAKE_DURATION_SECONDS": "3600"}) for _ in range(3)]
    wait_for(
        lambda: sum(batch.describe_service_job(jobId=j)["status"] == "RUNNING" for j in long) == 2,
        timeout=60,
    )


@pytest.fixture(params=["1", "2"], ids=["one-process", "two-workers"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    data = tmp_path / "data"
    data.mkdir()
    running = ServerProcess(
        data, f"sqlite:///{tmp_path / 'db.sqlite'}", "fake", "--workers", request.param
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_metrics_agree_with_the_store_and_count_every_worker_s_requests(
    server: ServerProcess,
) -> None:
    batch = server.client()
    _workload(batch)
    store = _in_store(batch, "q")
    assert store["SUCCEEDED"] == 2 and store["FAILED"] == 2 and store["RUNNING"] == 2
    # Every scrape, whichever worker answers it, sees the same jobs and every request.
    listed = len(STATUSES)  # the ListServiceJobs calls of _in_store
    for _ in range(4):
        metrics = _scrape(server.url)
        assert _jobs(metrics, "q") == {status: float(store[status]) for status in STATUSES}
        assert _jobs(metrics, "gone") == dict.fromkeys(STATUSES, 0.0)
        limits = metrics["batchd_capacity_limit_instances"]
        assert limits == {(("service_environment", "env"),): 2.0}
        used = metrics["batchd_capacity_used_instances"]
        assert used == {(("service_environment", "env"),): 2.0}
        [(leader_labels, one)] = metrics["batchd_scheduler_leader"].items()
        assert one == 1.0 and dict(leader_labels)["replica"].count(":") == 1
        # What the scheduler counted, whichever worker schedules and whichever answers
        finished = metrics["batchd_jobs_finished_total"]
        assert finished[(("queue", "q"), ("status", "SUCCEEDED"))] == 2.0
        assert finished[(("queue", "q"), ("status", "FAILED"))] == 2.0
        failed = metrics["batchd_attempts_failed_total"]
        assert failed == {(("queue", "q"), ("reason", "algorithm_error")): 2.0}
        waits = metrics["batchd_admission_wait_seconds_count"]
        assert waits[(("queue", "q"), ("share", ""))] == 6.0  # 4 quick, 2 running
        assert metrics["batchd_scheduler_cycle_seconds_count"][()] > 0
        requests = metrics["batchd_api_requests_total"]
        counted = requests[(("code", "200"), ("operation", "ListServiceJobs"))]
        assert counted == listed
        assert all("job" not in name for key in requests for name, _ in key)
        for _ in range(3):  # new connections: the kernel spreads them over the workers
            answer = httpx.post(f"{server.url}/v1/listservicejobs", json={"jobQueue": "q"})
            assert answer.status_code == 200
        listed += 3
        latency = metrics["batchd_api_request_seconds_count"]
        assert latency[(("operation", "ListServiceJobs"),)] == counted
    batch.update_job_queue(jobQueue="gone", state="DISABLED")
    wait_for(
        lambda: batch.describe_job_queues(jobQueues=["gone"])["jobQueues"][0]["status"] == "VALID"
    )
    batch.delete_job_queue(jobQueue="gone")
    wait_for(lambda: not _jobs(_scrape(server.url), "gone"), timeout=30)


@pytest.mark.parametrize("enabled", [False, True])
def test_the_request_log_has_one_line_per_request_only_when_asked_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, enabled: bool
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, request_log=enabled)

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "batchd.requests"]

    with serve(settings) as running, caplog.at_level("INFO", logger="batchd.requests"):
        answer = running.client().describe_service_environments()
        request_id = answer["ResponseMetadata"]["RequestId"]
        with pytest.raises(Exception, match="ResourceNotFound"):
            running.client("logs").get_log_events(logGroupName="/x", logStreamName="y")
        if enabled:
            # The server writes the line once the answer has gone: the client can be first.
            wait_for(lambda: len(logged()) >= 2)
    lines = logged()
    if not enabled:
        assert lines == []
        return
    assert len(lines) == 2
    assert lines[0].startswith("DescribeServiceEnvironments 200 ")
    assert f"request_id={request_id} access_key=testing" in lines[0]
    assert lines[1].startswith("Logs.GetLogEvents 400 ")
