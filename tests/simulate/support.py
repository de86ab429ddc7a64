"""Configurations and workloads for the simulator's tests, written as files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POLICY_ARN = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/{}"


def environment(name: str, capacity: int, unit: str = "NUM_INSTANCES") -> dict[str, Any]:
    return {
        "serviceEnvironmentName": name,
        "serviceEnvironmentType": "SAGEMAKER_TRAINING",
        "state": "ENABLED",
        "capacityLimits": [{"maxCapacity": capacity, "capacityUnit": unit}],
    }


def queue(name: str, env: str, policy: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "jobQueueName": name,
        "jobQueueType": "SAGEMAKER_TRAINING",
        "priority": 1,
        "serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": env}],
    }
    if policy is not None:
        entry["schedulingPolicyArn"] = POLICY_ARN.format(policy)
    return entry


def fifo_config(capacity: int) -> dict[str, Any]:
    return {"serviceEnvironments": [environment("env", capacity)], "jobQueues": [queue("q", "env")]}


def fairshare_config(weights: dict[str, float], capacity: int = 1) -> dict[str, Any]:
    policy = {
        "name": "teams",
        "fairsharePolicy": {
            "shareDecaySeconds": 3600,
            "shareDistribution": [
                {"shareIdentifier": k, "weightFactor": v} for k, v in weights.items()
            ],
        },
    }
    return {
        "serviceEnvironments": [environment("env", capacity)],
        "schedulingPolicies": [policy],
        "jobQueues": [queue("q", "env", "teams")],
    }


def quota_config(shares: dict[str, dict[str, Any]], capacity: int) -> dict[str, Any]:
    return {
        "serviceEnvironments": [environment("env", capacity, "ml.m5.large")],
        "schedulingPolicies": [
            {"name": "quota", "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}}
        ],
        "jobQueues": [queue("q", "env", "quota")],
        "quotaShares": [
            {
                "quotaShareName": name,
                "jobQueue": "q",
                "capacityLimits": [{"maxCapacity": share["limit"], "capacityUnit": "ml.m5.large"}],
                "resourceSharingConfiguration": share["sharing"],
                "preemptionConfiguration": {"inSharePreemption": "DISABLED"},
            }
            for name, share in shares.items()
        ],
    }


def job(at: float, name: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "submittedAt": at,
        "jobQueue": "q",
        "jobName": name,
        "instanceType": "ml.m5.large",
        "instanceCount": 1,
        "durationSeconds": seconds,
        "outcome": "Completed",
        **extra,
    }


def write(tmp: Path, config: dict[str, Any], jobs: list[dict[str, Any]]) -> tuple[Path, Path]:
    config_path, workload_path = tmp / "config.json", tmp / "workload.jsonl"
    config_path.write_text(json.dumps(config))
    workload_path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return config_path, workload_path


def read_jobs(out: Path) -> list[dict[str, Any]]:
    lines = (out / "jobs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
