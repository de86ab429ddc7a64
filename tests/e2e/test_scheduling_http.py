"""Scheduling behaviour through a real server over HTTP, with boto3 and the fake backend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.builders import fifo_queue
from tests.support.server import payload, wait_for

ACTIVE = ("SCHEDULED", "STARTING", "RUNNING")


def submit(batch: Any, queue: str, seconds: float = 0.2, **extra: Any) -> str:
    env = {"BATCHD_FAKE_DURATION_SECONDS": str(seconds)}
    env.update(extra.pop("env", {}))
    out = batch.submit_service_job(
        jobName=extra.pop("name", "job"),
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(instances=extra.pop("instances", 1), environment=env),
        **extra,
    )
    return str(out["jobId"])


def finished(batch: Any, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = batch.describe_service_job(jobId=job_id)
    return job if job["status"] in ("SUCCEEDED", "FAILED") else None


def test_jobs_run_to_success_and_never_exceed_capacity(batch: Any) -> None:
    queue = fifo_queue(batch, max_capacity=2)
    jobs = [submit(batch, queue, seconds=0.3, name=f"j{i}") for i in range(6)]
    peak = 0

    def all_done() -> bool:
        nonlocal peak
        # The snapshot is one consistent view; a run of describes is not.
        usage = batch.get_job_queue_snapshot(jobQueue=queue)["queueUtilization"]
        held = sum(u["quantity"] for u in usage.get("totalCapacityUsage", []))
        peak = max(peak, int(held))
        states = [batch.describe_service_job(jobId=j)["status"] for j in jobs]
        return all(s == "SUCCEEDED" for s in states)

    wait_for(all_done, timeout=30)
    assert 1 <= peak <= 2
    listed = batch.list_service_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == sorted(jobs)


def test_retry_that_matches_and_one_that_exits(batch: Any) -> None:
    queue = fifo_queue(batch)
    failing = {"BATCHD_FAKE_OUTCOME": "Failed", "BATCHD_FAKE_FAILURE_REASON": "AlgorithmError: x"}
    retried = submit(
        batch,
        queue,
        env=failing,
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"action": "RETRY", "onStatusReason": "Received status from SageMaker: Algo*"}
            ],
        },
    )
    exited = submit(
        batch,
        queue,
        env=failing,
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "*"}],
        },
    )
    assert len(wait_for(lambda: finished(batch, retried), timeout=30)["attempts"]) == 3
    assert len(wait_for(lambda: finished(batch, exited), timeout=30)["attempts"]) == 1


def test_attempt_timeout_over_http(batch: Any) -> None:
    queue = fifo_queue(batch)
    job_id = submit(batch, queue, seconds=60, timeoutConfig={"attemptDurationSeconds": 1})
    job = wait_for(lambda: finished(batch, job_id), timeout=30)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == (
        "FAILED",
        "Job attempt duration exceeded timeout",
        True,
    )


@pytest.mark.parametrize("state", ["RUNNABLE", "SCHEDULED", "STARTING", "RUNNING"])
def test_terminate_in_each_state_over_http(batch: Any, state: str) -> None:
    queue = fifo_queue(batch, max_capacity=1)
    blocker = None
    if state == "RUNNABLE":
        blocker = submit(batch, queue, seconds=60, name="blocker")
        wait_for(lambda: batch.describe_service_job(jobId=blocker)["status"] in ACTIVE)
    job_id = submit(batch, queue, seconds=60)
    wait_for(lambda: batch.describe_service_job(jobId=job_id)["status"] in (state, "RUNNING"))
    batch.terminate_service_job(
        jobId=batch.describe_service_job(jobId=job_id)["jobArn"], reason="stop it"
    )
    job = wait_for(lambda: finished(batch, job_id), timeout=30)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == ("FAILED", "stop it", True)
    if blocker:
        assert batch.describe_service_job(jobId=blocker)["status"] in ACTIVE


def test_two_teams_share_by_weight_over_http(batch: Any) -> None:
    batch.create_service_environment(
        serviceEnvironmentName="fs-env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 4, "capacityUnit": "NUM_INSTANCES"}],
    )
    arn = batch.create_scheduling_policy(
        name="teams",
        fairsharePolicy={
            "shareDecaySeconds": 600,
            "shareDistribution": [
                {"shareIdentifier": "a", "weightFactor": 1.0},
                {"shareIdentifier": "b", "weightFactor": 3.0},
            ],
        },
    )["arn"]
    batch.create_job_queue(
        jobQueueName="fs",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        schedulingPolicyArn=arn,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "fs-env"}],
    )
    ids = {
        t: [submit(batch, "fs", seconds=0.3, shareIdentifier=t) for _ in range(12)] for t in "ab"
    }
    wait_for(lambda: all(finished(batch, j) for js in ids.values() for j in js), timeout=60)
    start = {
        t: sorted(batch.describe_service_job(jobId=j)["scheduledAt"] for j in js)
        for t, js in ids.items()
    }
    # Over the first 8 dispatches, the lighter-weighted team a got the larger part
    first = sorted((at, t) for t, ats in start.items() for at in ats)[:8]
    assert sum(t == "a" for _, t in first) >= 5, first


def test_snapshot_lists_front_of_queue_in_order(batch: Any) -> None:
    queue = fifo_queue(batch, max_capacity=1)
    submit(batch, queue, seconds=60, name="running")
    waiting = [submit(batch, queue, name=f"w{i}") for i in range(3)]
    wait_for(
        lambda: all(batch.describe_service_job(jobId=j)["status"] == "RUNNABLE" for j in waiting)
    )
    snap = batch.get_job_queue_snapshot(jobQueue=queue)
    order = [j["jobArn"].rsplit("/", 1)[1] for j in snap["frontOfQueue"]["jobs"]]
    assert order == waiting
    assert snap["queueUtilization"]["totalCapacityUsage"] == [
        {"capacityUnit": "NUM_INSTANCES", "quantity": 1.0}
    ]
    assert json.dumps(snap, default=str)


def test_quota_share_lends_idle_capacity_and_reclaims_it_over_http(batch: Any) -> None:
    batch.create_service_environment(
        serviceEnvironmentName="qm-env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 4, "capacityUnit": "ml.m5.large"}],
    )
    arn = batch.create_scheduling_policy(
        name="quota", quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}
    )["arn"]
    batch.create_job_queue(
        jobQueueName="qm",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        schedulingPolicyArn=arn,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "qm-env"}],
    )
    for name, sharing in [
        ("lender", {"strategy": "LEND"}),
        ("borrower", {"strategy": "LEND_AND_BORROW", "borrowLimit": 100}),
    ]:
        batch.create_quota_share(
            quotaShareName=name,
            jobQueue="qm",
            capacityLimits=[{"maxCapacity": 2, "capacityUnit": "ml.m5.large"}],
            resourceSharingConfiguration=sharing,
            preemptionConfiguration={"inSharePreemption": "DISABLED"},
        )
    # The borrower fills the whole environment: 2 of its own instances and 2 lent ones.
    borrowed = [submit(batch, "qm", seconds=600, quotaShareName="borrower") for _ in range(4)]
    wait_for(lambda: all(batch.describe_service_job(jobId=j)["status"] in ACTIVE for j in borrowed))
    # The lender's own job arrives: one borrowed job is preempted to make room for it.
    owner = submit(batch, "qm", seconds=600, quotaShareName="lender")
    wait_for(lambda: batch.describe_service_job(jobId=owner)["status"] in ACTIVE, timeout=30)

    def preempted() -> list[dict[str, Any]]:
        jobs = [batch.describe_service_job(jobId=j) for j in borrowed]
        return [j for j in jobs if j.get("preemptionSummary", {}).get("preemptedAttemptCount")]

    [victim] = wait_for(preempted, timeout=30)
    assert victim["status"] in ("RUNNABLE", "SCHEDULED", "STARTING", "RUNNING")
    assert victim["preemptionSummary"]["recentPreemptedAttempts"][0]["statusReason"] == (
        "Cross-share preemption triggered to reclaim borrowed capacity"
    )
    assert victim["attempts"] == []
    usage = batch.get_job_queue_snapshot(jobQueue="qm")["queueUtilization"]
    shares = {
        u["quotaShareName"]: sum(c["quantity"] for c in u["capacityUsage"])
        for u in usage["quotaShareUtilization"]["topCapacityUtilization"]
    }
    assert shares["lender"] == 1.0 and shares["borrower"] <= 3.0
