"""``GET /metrics`` per share: what each fair share and quota share holds, may hold and weighs,
read from the store; decayed fair-share usage from the replica that schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import payload, serve, settings_for, wait_for


def scrape(url: str) -> dict[str, dict[tuple[str, str], float]]:
    found: dict[str, dict[tuple[str, str], float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if "share" in sample.labels:
                key = (sample.labels["queue"], sample.labels["share"])
                found.setdefault(sample.name, {})[key] = sample.value
    return found


def submit(batch: Any, queue: str, **share: str) -> str:
    env = {"BATCHD_FAKE_DURATION_SECONDS": "3600"}
    return str(
        batch.submit_service_job(
            jobName="j",
            jobQueue=queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=payload(environment=env),
            **share,
        )["jobId"]
    )


def test_share_series_follow_configuration_and_running_jobs(tmp_path: Path) -> None:
    with serve(settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)) as server:
        batch = server.client()
        for env, unit in (("fair-env", "NUM_INSTANCES"), ("quota-env", "ml.m5.large")):
            batch.create_service_environment(
                serviceEnvironmentName=env,
                serviceEnvironmentType="SAGEMAKER_TRAINING",
                capacityLimits=[{"maxCapacity": 4, "capacityUnit": unit}],
            )
        fair = batch.create_scheduling_policy(
            name="teams",
            fairsharePolicy={
                "shareDecaySeconds": 600,
                "shareDistribution": [
                    {"shareIdentifier": "a", "weightFactor": 0.5},
                    {"shareIdentifier": "b", "weightFactor": 2.0},
                ],
            },
        )["arn"]
        quota = batch.create_scheduling_policy(
            name="quota", quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}
        )["arn"]
        for queue, env, policy in (("fq", "fair-env", fair), ("qq", "quota-env", quota)):
            batch.create_job_queue(
                jobQueueName=queue,
                jobQueueType="SAGEMAKER_TRAINING",
                priority=1,
                schedulingPolicyArn=policy,
                serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env}],
            )
        batch.create_quota_share(
            quotaShareName="research",
            jobQueue="qq",
            capacityLimits=[{"maxCapacity": 3, "capacityUnit": "ml.m5.large"}],
            resourceSharingConfiguration={"strategy": "LEND_AND_BORROW", "borrowLimit": 50},
            preemptionConfiguration={"inSharePreemption": "DISABLED"},
        )
        ids = [submit(batch, "fq", shareIdentifier="a") for _ in range(2)]
        ids.append(submit(batch, "qq", quotaShareName="research"))
        wait_for(
            lambda: all(batch.describe_service_job(jobId=j)["status"] == "RUNNING" for j in ids)
        )
        metrics = wait_for(
            lambda: (m := scrape(server.url)).get("batchd_fairshare_decayed_usage") and m
        )
        assert metrics["batchd_fairshare_weight"] == {("fq", "a"): 0.5, ("fq", "b"): 2.0}
        assert metrics["batchd_quota_share_limit_instances"] == {("qq", "research"): 3.0}
        assert metrics["batchd_quota_share_borrow_limit_percent"] == {("qq", "research"): 50.0}
        assert metrics["batchd_share_used_instances"] == {("fq", "a"): 2.0, ("qq", "research"): 1.0}
        assert metrics["batchd_fairshare_decayed_usage"][("fq", "a")] > 0
