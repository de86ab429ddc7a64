"""The real AWS CLI against batchd: shorthand syntax, path-encoded ARNs, paging, errors.

Each CLI run starts a Python interpreter (about half a second), so the round trips that
only the CLI exercises share one test.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.builders import parked_queue, quota_queue, submit_many
from tests.support.server import RunningServer, payload

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"


def cli(server: RunningServer, *args: str) -> Any:
    out = server.aws("batch", *args)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_the_cli_creates_tags_pages_submits_and_reports_errors(server: RunningServer) -> None:
    batch = server.client()
    quota_queue(batch, "qm")
    share = cli(
        server,
        "create-quota-share",
        "--quota-share-name",
        "team",
        "--job-queue",
        "qm",
        "--capacity-limits",
        "maxCapacity=2,capacityUnit=ml.m5.large",
        "--resource-sharing-configuration",
        "strategy=LEND_AND_BORROW,borrowLimit=100",
        "--preemption-configuration",
        "inSharePreemption=ENABLED",
        "--tags",
        "team=a,cost=b",
    )
    arn = share["quotaShareArn"]
    assert arn == f"{ACCOUNT}:job-queue/qm/quota-share/team"
    described = batch.describe_quota_share(quotaShareArn=arn)
    assert described["resourceSharingConfiguration"] == {
        "strategy": "LEND_AND_BORROW",
        "borrowLimit": 100,
    }
    # DELETE /v1/tags/{arn}?tagKeys=..., then GET, with the ARN percent-encoded in the path.
    cli(server, "untag-resource", "--resource-arn", arn, "--tag-keys", "cost")
    assert cli(server, "list-tags-for-resource", "--resource-arn", arn) == {"tags": {"team": "a"}}

    queue = parked_queue(batch, "q")
    ids = submit_many(batch, queue, [f"page{i}" for i in range(5)])
    # The CLI follows nextToken itself: five jobs in pages of two come back as one list.
    listed = cli(
        server,
        "list-service-jobs",
        "--job-queue",
        f"{ACCOUNT}:job-queue/q",
        "--filters",
        "name=JOB_NAME,values=PAGE*",
        "--page-size",
        "2",
    )
    assert sorted(j["jobId"] for j in listed["jobSummaryList"]) == sorted(ids)

    job = cli(
        server,
        "submit-service-job",
        "--job-name",
        "cli-job",
        "--job-queue",
        "q",
        "--service-job-type",
        "SAGEMAKER_TRAINING",
        "--service-request-payload",
        payload(),
        "--retry-strategy",
        "attempts=2,evaluateOnExit=[{action=EXIT,onStatusReason=*}]",
        "--tags",
        "k=v",
    )
    found = batch.describe_service_job(jobId=job["jobArn"])
    assert found["retryStrategy"] == {
        "attempts": 2,
        "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "*"}],
    }
    assert found["tags"] == {"k": "v"}

    failed = server.aws("batch", "describe-service-job", "--job-id", "no-such-job", check=False)
    assert failed.returncode in (254, 255)  # AWS CLI v2 / v1 exit code for a service error
    assert "(ClientException)" in failed.stderr
    assert "no-such-job" in failed.stderr
