"""``batchd export``: a live server's configuration and finished jobs, as simulate reads them.

Everything goes through boto3, so it works against batchd or anything that speaks the Batch
API. A job's duration is what its last attempt measured (stoppedAt - startedAt), its outcome
SUCCEEDED -> Completed, anything else -> Failed with its status reason. The finished jobs are
held in memory to be put in order of submission: a day of a busy server, not a year.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchd import jsontext
from batchd.simulate.engine import ACCOUNT, REGION

__all__ = ["ExportError", "export"]

_FINISHED = ("SUCCEEDED", "FAILED")


class ExportError(Exception):
    pass


def _name(arn: Any) -> str:
    return str(arn).rsplit("/", 1)[-1]


def _policy_arn(name: str) -> str:
    return f"arn:aws:batch:{REGION}:{ACCOUNT}:scheduling-policy/{name}"


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        return int(float(since) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise ExportError(f"--since {since!r}: not ISO 8601 or epoch seconds") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params):
        found.extend(page.get(key) or [])
    return found


def _configuration(client: Any) -> dict[str, Any]:
    environments = [
        {
            "serviceEnvironmentName": env["serviceEnvironmentName"],
            "serviceEnvironmentType": env["serviceEnvironmentType"],
            "state": env.get("state", "ENABLED"),
            "capacityLimits": env.get("capacityLimits") or [],
        }
        for env in _pages(client, "describe_service_environments", "serviceEnvironments")
    ]
    arns = [p["arn"] for p in _pages(client, "list_scheduling_policies", "schedulingPolicies")]
    policies = []
    for start in range(0, len(arns), 100):
        described = client.describe_scheduling_policies(arns=arns[start : start + 100])
        for policy in described.get("schedulingPolicies") or []:
            entry = {"name": policy["name"]}
            for key in ("fairsharePolicy", "quotaSharePolicy"):
                if policy.get(key) is not None:
                    entry[key] = policy[key]
            policies.append(entry)
    queues, shares = [], []
    for queue in _pages(client, "describe_job_queues", "jobQueues"):
        if not queue.get("serviceEnvironmentOrder"):
            continue  # a compute-environment queue: not batchd's
        entry = {
            "jobQueueName": queue["jobQueueName"],
            "jobQueueType": queue.get("jobQueueType", "SAGEMAKER_TRAINING"),
            "state": queue.get("state", "ENABLED"),
            "priority": queue["priority"],
            "serviceEnvironmentOrder": [
                {"order": o["order"], "serviceEnvironment": _name(o["serviceEnvironment"])}
                for o in queue["serviceEnvironmentOrder"]
            ],
        }
        if queue.get("schedulingPolicyArn"):
            entry["schedulingPolicyArn"] = _policy_arn(_name(queue["schedulingPolicyArn"]))
        if queue.get("jobStateTimeLimitActions"):
            entry["jobStateTimeLimitActions"] = queue["jobStateTimeLimitActions"]
        queues.append(entry)
        for listed in _pages(
            client, "list_quota_shares", "quotaShares", jobQueue=queue["jobQueueArn"]
        ):
            share = client.describe_quota_share(quotaShareArn=listed["quotaShareArn"])
            shares.append(
                {
                    "quotaShareName": share["quotaShareName"],
                    "jobQueue": queue["jobQueueName"],
                    **{
                        key: share[key]
                        for key in (
                            "capacityLimits",
                            "resourceSharingConfiguration",
                            "preemptionConfiguration",
                            "state",
                        )
                        if share.get(key) is not None
                    },
                }
            )
    return {
        "serviceEnvironments": environments,
        "schedulingPolicies": policies,
        "jobQueues": queues,
        "quotaShares": shares,
    }


def _job(client: Any, job_id: str) -> dict[str, Any] | None:
    """A finished job as a workload line (submittedAt still in epoch ms); None if it never ran."""
    job = client.describe_service_job(jobId=job_id)
    attempts = job.get("attempts") or []
    ran = [a for a in attempts if a.get("startedAt") and a.get("stoppedAt")]
    if not ran:
        return None
    last = ran[-1]
    payload = jsontext.loads(job.get("serviceRequestPayload") or "{}")
    resources = payload.get("ResourceConfig") or {}
    line: dict[str, Any] = {
        "submittedAt": _ms(job["createdAt"]),
        "jobQueue": _name(job["jobQueue"]),
        "jobName": job["jobName"],
        "instanceType": resources.get("InstanceType", "ml.m5.large"),
        "instanceCount": int(resources.get("InstanceCount", 1)),
        "durationSeconds": ((_ms(last["stoppedAt"]) or 0) - (_ms(last["startedAt"]) or 0)) / 1000,
        "outcome": "Completed" if job["status"] == "SUCCEEDED" else "Failed",
    }
    if job["status"] != "SUCCEEDED":
        line["failureReason"] = job.get("statusReason") or "AlgorithmError: failed"
    for key in ("shareIdentifier", "quotaShareName", "schedulingPriority", "retryStrategy"):
        if job.get(key) is not None:
            line[key] = job[key]
    return line


def export(
    endpoint_url: str, config_out: Path, workload_out: Path, since: str | None, region: str
) -> int:
    import boto3
    import botocore.exceptions

    client = boto3.client(
        "batch",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="batchd",
        aws_secret_access_key="batchd",
    )
    after = _since_ms(since)
    try:
        config = _configuration(client)
        lines = []
        for queue in config["jobQueues"]:
            for status in _FINISHED:
                for summary in _pages(
                    client,
                    "list_service_jobs",
                    "jobSummaryList",
                    jobQueue=queue["jobQueueName"],
                    jobStatus=status,
                ):
                    created = _ms(summary.get("createdAt"))
                    if after is not None and created is not None and created < after:
                        continue
                    line = _job(client, summary["jobId"])
                    if line is not None:
                        lines.append(line)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        raise ExportError(str(err)) from None
    lines.sort(key=lambda line: (line["submittedAt"], line["jobName"]))
    origin = lines[0]["submittedAt"] if lines else 0
    for line in lines:
        line["submittedAt"] = (line["submittedAt"] - origin) / 1000
    config_out.write_text(jsontext.dumps_pretty(config) + "\n", encoding="utf-8")
    with workload_out.open("wb") as out:
        out.writelines(jsontext.dumps(line, sort_keys=True) + b"\n" for line in lines)
    return 0
