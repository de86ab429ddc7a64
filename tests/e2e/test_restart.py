"""A restarted server on the same database and data directory has everything, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.builders import (
    all_jobs,
    fair_queue,
    parked_queue,
    quota_queue,
    quota_share,
    submit,
)
from tests.support.server import serve, settings_for, wait_for

QUEUES = ("fifo", "fair", "quota")


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def everything(batch: Any) -> dict[str, Any]:
    """Every resource and job as the API shows them, with their tags."""
    envs = batch.describe_service_environments()["serviceEnvironments"]
    queues = batch.describe_job_queues()["jobQueues"]
    arns = [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]]
    policies = batch.describe_scheduling_policies(arns=arns)["schedulingPolicies"]
    shares = [
        _strip(batch.describe_quota_share(quotaShareArn=s["quotaShareArn"]))
        for q in queues
        for s in batch.list_quota_shares(jobQueue=q["jobQueueName"])["quotaShares"]
    ]
    summaries = {
        q["jobQueueName"]: all_jobs(
            batch, q["jobQueueName"], filters=[{"name": "JOB_NAME", "values": ["*"]}]
        )
        for q in queues
    }
    jobs = [
        _strip(batch.describe_service_job(jobId=j["jobId"]))
        for listed in summaries.values()
        for j in listed
    ]
    resource_arns = [
        *(e["serviceEnvironmentArn"] for e in envs),
        *(q["jobQueueArn"] for q in queues),
        *arns,
        *(s["quotaShareArn"] for s in shares),
        *(j["jobArn"] for j in jobs),
    ]
    tags = {arn: batch.list_tags_for_resource(resourceArn=arn)["tags"] for arn in resource_arns}
    return {
        "environments": envs,
        "queues": queues,
        "policies": policies,
        "shares": shares,
        "summaries": summaries,
        "jobs": jobs,
        "tags": tags,
    }


def _populate(batch: Any) -> dict[str, Any]:
    parked_queue(batch, "fifo", tags={"kind": "fifo"})
    fair_queue(batch, "fair")
    quota_queue(batch, "quota")
    quota_share(batch, "quota", "red", tags={"colour": "red"})
    quota_share(batch, "quota", "blue", state="DISABLED")
    batch.tag_resource(
        resourceArn="arn:aws:batch:us-east-1:123456789012:scheduling-policy/fair-policy",
        tags={"p": "1"},
    )
    kept = submit(
        batch,
        "fifo",
        "kept",
        clientToken="restart-token",
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "*"}],
        },
        timeoutConfig={"attemptDurationSeconds": 60},
        tags={"t": "1"},
    )
    for i in range(4):
        submit(batch, "fifo", f"fifo-{i}", schedulingPriority=i)
    ended = submit(batch, "fifo", "ended")
    batch.terminate_service_job(jobId=ended["jobId"], reason="stopped before restart")
    reprioritised = submit(batch, "fair", "fair-job", shareIdentifier="teamA")
    batch.update_service_job(jobId=reprioritised["jobId"], schedulingPriority=77)
    submit(batch, "quota", "quota-job", quotaShareName="red")
    batch.tag_resource(resourceArn=kept["jobArn"], tags={"late": "tag"})
    for queue, count in (("fifo", 5), ("fair", 1), ("quota", 1)):
        wait_for(lambda q=queue, c=count: len(all_jobs(batch, q, jobStatus="RUNNABLE")) == c)
    return kept


def test_every_resource_and_job_survives_a_restart_unchanged(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path / "data")
    with serve(settings) as first:
        batch = first.client()
        kept = _populate(batch)
        before = everything(batch)
        page = batch.list_service_jobs(jobQueue="fifo", jobStatus="RUNNABLE", maxResults=2)
    assert len(before["jobs"]) == 8
    assert len(before["shares"]) == 2

    with serve(settings) as second:
        batch = second.client()
        assert everything(batch) == before
        # A token issued before the restart continues the listing after it.
        rest = batch.list_service_jobs(
            jobQueue="fifo", jobStatus="RUNNABLE", nextToken=page["nextToken"]
        )["jobSummaryList"]
        assert len(page["jobSummaryList"]) + len(rest) == 5
        # Client tokens are durable: the retry of a pre-restart submit is the same job.
        again = submit(
            batch,
            "fifo",
            "kept",
            clientToken="restart-token",
            retryStrategy={
                "attempts": 3,
                "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "*"}],
            },
            timeoutConfig={"attemptDurationSeconds": 60},
            tags={"t": "1"},
        )
        assert again["jobId"] == kept["jobId"]
        # The restarted server still takes, terminates and updates work.
        fresh = submit(batch, "fifo", "after-restart")
        batch.terminate_service_job(jobId=fresh["jobId"], reason="bye")
        assert batch.describe_service_job(jobId=fresh["jobId"])["status"] == "FAILED"
        queued = before["summaries"]["fifo"][-1]["jobId"]
        batch.update_service_job(jobId=queued, schedulingPriority=9)
        after_changes = everything(batch)

    with serve(settings) as third:
        assert everything(third.client()) == after_changes
