"""Quota shares: Create / Update / Describe / List / Delete (spec §2.4, §3.13)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    fair_queue,
    parked_queue,
    quota_queue,
    quota_share,
    rejected,
    submit,
    unique,
)

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"


def describe(batch: Any, arn: str) -> dict[str, Any]:
    found = dict(batch.describe_quota_share(quotaShareArn=arn))
    found.pop("ResponseMetadata")
    return found


def names(batch: Any, queue: str) -> list[str]:
    return [s["quotaShareName"] for s in batch.list_quota_shares(jobQueue=queue)["quotaShares"]]


def test_a_created_share_is_described_as_aws_describes_it(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    out = shared_batch.create_quota_share(
        quotaShareName="TeamAShare",
        jobQueue=queue,
        capacityLimits=[
            {"maxCapacity": 10, "capacityUnit": "ml.m5.large"},
            {"maxCapacity": 5, "capacityUnit": "ml.g5.xlarge"},
        ],
        resourceSharingConfiguration={"strategy": "LEND_AND_BORROW", "borrowLimit": 200},
        preemptionConfiguration={"inSharePreemption": "ENABLED"},
        tags={"Department": "Engineering"},
    )
    arn = f"{ACCOUNT}:job-queue/{queue}/quota-share/TeamAShare"
    assert (out["quotaShareName"], out["quotaShareArn"]) == ("TeamAShare", arn)
    assert describe(shared_batch, arn) == {
        "quotaShareName": "TeamAShare",
        "quotaShareArn": arn,
        "jobQueueArn": f"{ACCOUNT}:job-queue/{queue}",
        "capacityLimits": [
            {"maxCapacity": 10, "capacityUnit": "ml.m5.large"},
            {"maxCapacity": 5, "capacityUnit": "ml.g5.xlarge"},
        ],
        "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": 200},
        "preemptionConfiguration": {"inSharePreemption": "ENABLED"},
        "state": "ENABLED",
        "status": "VALID",
        "tags": {"Department": "Engineering"},
    }


def test_lend_and_borrow_without_a_borrow_limit_borrows_without_limit(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, queue, "s", strategy="LEND_AND_BORROW", state="DISABLED")
    found = describe(shared_batch, arn)
    assert found["resourceSharingConfiguration"] == {
        "strategy": "LEND_AND_BORROW",
        "borrowLimit": -1,
    }
    assert found["state"] == "DISABLED"


def test_list_shows_the_shares_of_one_queue_without_tags(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    other = quota_queue(shared_batch, unique("qm"))
    for name in ("a", "b", "c"):
        quota_share(shared_batch, queue, name, tags={"t": name})
    quota_share(shared_batch, other, "elsewhere")
    listed = shared_batch.list_quota_shares(jobQueue=f"{ACCOUNT}:job-queue/{queue}")
    assert [s["quotaShareName"] for s in listed["quotaShares"]] == ["a", "b", "c"]
    assert all("tags" not in s for s in listed["quotaShares"])
    assert listed["quotaShares"][0]["status"] == "VALID"
    seen: list[str] = []
    for page in shared_batch.get_paginator("list_quota_shares").paginate(
        jobQueue=queue, PaginationConfig={"PageSize": 2}
    ):
        seen.extend(s["quotaShareName"] for s in page["quotaShares"])
    assert seen == ["a", "b", "c"]
    token = shared_batch.list_quota_shares(jobQueue=queue, maxResults=1)["nextToken"]
    with rejected("nextToken"):
        shared_batch.list_quota_shares(jobQueue=other, nextToken=token)
    with rejected("maxResults"):
        shared_batch.list_quota_shares(jobQueue=queue, maxResults=0)
    with rejected("nope"):
        shared_batch.list_quota_shares(jobQueue="nope")


def _limit(unit: str = "ml.m5.large", count: int = 1) -> dict[str, Any]:
    return {"maxCapacity": count, "capacityUnit": unit}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quotaShareName": "bad name"}, "quotaShareName"),
        ({"quotaShareName": "s" * 129}, "quotaShareName"),
        ({"capacityLimits": []}, "capacityLimits"),
        ({"capacityLimits": [_limit(f"ml.c5.x{i}") for i in range(6)]}, "capacityLimits"),
        ({"capacityLimits": [_limit("NUM_INSTANCES")]}, "capacityUnit"),
        ({"capacityLimits": [_limit("ml.p4d.24xlarge")]}, "capacityUnit"),
        ({"capacityLimits": [_limit(), _limit()]}, "capacityLimits"),
        ({"capacityLimits": [_limit(count=0)]}, "maxCapacity"),
        ({"resourceSharingConfiguration": {"strategy": "SHARE"}}, "strategy"),
        (
            {"resourceSharingConfiguration": {"strategy": "LEND", "borrowLimit": 100}},
            "borrowLimit",
        ),
        (
            {"resourceSharingConfiguration": {"strategy": "RESERVE", "borrowLimit": 100}},
            "borrowLimit",
        ),
        (
            {"resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": -2}},
            "borrowLimit",
        ),
        ({"preemptionConfiguration": {"inSharePreemption": "YES"}}, "inSharePreemption"),
        ({"state": "ON"}, "state"),
        ({"tags": {"aws:cost": "x"}}, "aws:"),
    ],
)
def test_an_invalid_create_is_a_client_exception_naming_the_field(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    request: dict[str, Any] = {
        "quotaShareName": "share",
        "jobQueue": queue,
        "capacityLimits": [_limit()],
        "resourceSharingConfiguration": {"strategy": "RESERVE"},
        "preemptionConfiguration": {"inSharePreemption": "DISABLED"},
        **change,
    }
    with rejected(field):
        shared_batch.create_quota_share(**request)
    assert names(shared_batch, queue) == []


def test_shares_need_an_existing_quota_management_queue(shared_batch: Any) -> None:
    for queue in (
        parked_queue(shared_batch, unique("fifo")),
        fair_queue(shared_batch, unique("fs")),
    ):
        with rejected(queue, "quota"):
            quota_share(shared_batch, queue, "s")
    with rejected("missing"):
        quota_share(shared_batch, "missing", "s")


def test_a_duplicate_share_name_is_refused_in_one_queue_but_not_across_queues(
    shared_batch: Any,
) -> None:
    first, second = quota_queue(shared_batch, unique("qm")), quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, first, "same", limits=[(3, "ml.m5.large")])
    before = describe(shared_batch, arn)
    with rejected("same", "already exists"):
        quota_share(shared_batch, first, "same", limits=[(1, "ml.g5.xlarge")])
    assert describe(shared_batch, arn) == before
    quota_share(shared_batch, second, "same")
    assert names(shared_batch, second) == ["same"]


def test_the_twenty_first_share_of_a_queue_is_refused(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    for i in range(20):
        quota_share(shared_batch, queue, f"s{i}")
    with rejected(queue, "20"):
        quota_share(shared_batch, queue, "s20")
    assert len(names(shared_batch, queue)) == 20


def test_update_changes_limits_sharing_preemption_and_state(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, queue, "s")
    out = shared_batch.update_quota_share(
        quotaShareArn=arn,
        capacityLimits=[_limit("ml.g5.xlarge", 4)],
        resourceSharingConfiguration={"strategy": "LEND_AND_BORROW", "borrowLimit": 50},
        preemptionConfiguration={"inSharePreemption": "ENABLED"},
        state="DISABLED",
    )
    assert (out["quotaShareName"], out["quotaShareArn"]) == ("s", arn)
    found = describe(shared_batch, arn)
    assert found["capacityLimits"] == [_limit("ml.g5.xlarge", 4)]
    assert found["resourceSharingConfiguration"] == {
        "strategy": "LEND_AND_BORROW",
        "borrowLimit": 50,
    }
    assert found["preemptionConfiguration"] == {"inSharePreemption": "ENABLED"}
    assert found["state"] == "DISABLED"
    shared_batch.update_quota_share(quotaShareArn=arn, state="ENABLED")
    assert describe(shared_batch, arn)["capacityLimits"] == [_limit("ml.g5.xlarge", 4)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"capacityLimits": [_limit("NUM_INSTANCES")]}, "capacityUnit"),
        ({"capacityLimits": []}, "capacityLimits"),
        ({"resourceSharingConfiguration": {"strategy": "LEND", "borrowLimit": 5}}, "borrowLimit"),
        ({"state": "MAYBE"}, "state"),
    ],
)
def test_an_invalid_update_changes_nothing(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, queue, "s")
    before = describe(shared_batch, arn)
    with rejected(field):
        shared_batch.update_quota_share(quotaShareArn=arn, **change)
    assert describe(shared_batch, arn) == before


def test_unknown_share_arns_are_client_exceptions(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    quota_share(shared_batch, queue, "s")
    for arn in [
        f"{ACCOUNT}:job-queue/{queue}/quota-share/missing",
        f"{ACCOUNT}:job-queue/nope/quota-share/s",
        f"{ACCOUNT}:job-queue/{queue}",
        f"{ACCOUNT}:job-queue/{queue}/quota-share/s/extra",
        f"arn:aws:batch:eu-west-1:123456789012:job-queue/{queue}/quota-share/s",
        "s",
    ]:
        with rejected("quotaShareArn"):
            shared_batch.describe_quota_share(quotaShareArn=arn)
        with rejected("quotaShareArn"):
            shared_batch.update_quota_share(quotaShareArn=arn, state="DISABLED")
        with rejected("quotaShareArn"):
            shared_batch.delete_quota_share(quotaShareArn=arn)


def test_delete_needs_a_disabled_share_and_ends_its_queued_jobs(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, queue, "s", tags={"a": "b"})
    quota_share(shared_batch, queue, "kept")
    doomed = submit(shared_batch, queue, "doomed", quotaShareName="s")["jobId"]
    spared = submit(shared_batch, queue, "spared", quotaShareName="kept")["jobId"]
    with rejected("s", "DISABLED"):
        shared_batch.delete_quota_share(quotaShareArn=arn)
    shared_batch.update_quota_share(quotaShareArn=arn, state="DISABLED")
    shared_batch.delete_quota_share(quotaShareArn=arn)
    assert names(shared_batch, queue) == ["kept"]
    with rejected("quotaShareArn"):
        shared_batch.describe_quota_share(quotaShareArn=arn)
    ended = shared_batch.describe_service_job(jobId=doomed)
    assert (ended["status"], ended["isTerminated"], ended["statusReason"]) == (
        "FAILED",
        True,
        "Quota share deleted",
    )
    assert shared_batch.describe_service_job(jobId=spared)["status"] in ("SUBMITTED", "RUNNABLE")
    quota_share(shared_batch, queue, "s")
    assert describe(shared_batch, arn)["tags"] == {}, "deleting a share deletes its tags"


def test_deleting_a_queue_deletes_its_shares(shared_batch: Any) -> None:
    queue = quota_queue(shared_batch, unique("qm"))
    arn = quota_share(shared_batch, queue, "s")
    shared_batch.update_job_queue(jobQueue=queue, state="DISABLED")
    shared_batch.delete_job_queue(jobQueue=queue)
    with rejected("quotaShareArn"):
        shared_batch.describe_quota_share(quotaShareArn=arn)
    shared_batch.create_job_queue(
        jobQueueName=queue,
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        schedulingPolicyArn=f"{ACCOUNT}:scheduling-policy/{queue}-policy",
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": f"{queue}-env"}],
    )
    assert names(shared_batch, queue) == []
