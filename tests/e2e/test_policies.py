"""Scheduling policies: Create / Update / Describe / List / Delete (spec §2.3, §3.12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    fairshare_policy,
    parked_queue,
    quota_policy,
    quota_queue,
    rejected,
    unique,
)

PREFIX = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/"


def describe(batch: Any, *arns: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = batch.describe_scheduling_policies(arns=list(arns))[
        "schedulingPolicies"
    ]
    return found


def test_a_fair_share_policy_is_described_with_everything_it_was_given(
    shared_batch: Any,
) -> None:
    name = unique("fair")
    fair = {
        "shareDecaySeconds": 3600,
        "computeReservation": 25,
        "shareDistribution": [
            {"shareIdentifier": "teamA", "weightFactor": 0.5},
            {"shareIdentifier": "teamB*", "weightFactor": 2.0},
        ],
    }
    out = shared_batch.create_scheduling_policy(name=name, fairsharePolicy=fair, tags={"k": "v"})
    assert (out["name"], out["arn"]) == (name, PREFIX + name)
    [policy] = describe(shared_batch, out["arn"])
    assert policy == {
        "name": name,
        "arn": PREFIX + name,
        "fairsharePolicy": fair,
        "tags": {"k": "v"},
    }


def test_a_quota_share_policy_is_described_without_a_fair_share_part(shared_batch: Any) -> None:
    arn = quota_policy(shared_batch, unique("quota"))
    [policy] = describe(shared_batch, arn)
    assert policy["quotaSharePolicy"] == {"idleResourceAssignmentStrategy": "FIFO"}
    assert "fairsharePolicy" not in policy
    assert policy["tags"] == {}


def test_a_policy_with_neither_part_is_an_empty_fair_share_policy(shared_batch: Any) -> None:
    arn = shared_batch.create_scheduling_policy(name=unique("empty"))["arn"]
    [policy] = describe(shared_batch, arn)
    assert "fairsharePolicy" in policy
    assert "quotaSharePolicy" not in policy
    queue = parked_queue(shared_batch, unique("q"), policy_arn=arn)
    with rejected("shareIdentifier"):
        shared_batch.submit_service_job(
            jobName="j",
            jobQueue=queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload="{}",
        )


def _share(identifier: str, weight: float = 1.0) -> dict[str, Any]:
    return {"shareIdentifier": identifier, "weightFactor": weight}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "spaces are bad"}, "name"),
        ({"name": "n" * 129}, "name"),
        ({"fairsharePolicy": {"shareDecaySeconds": -1}}, "shareDecaySeconds"),
        ({"fairsharePolicy": {"shareDecaySeconds": 604801}}, "shareDecaySeconds"),
        ({"fairsharePolicy": {"computeReservation": 100}}, "computeReservation"),
        ({"fairsharePolicy": {"computeReservation": -1}}, "computeReservation"),
        ({"fairsharePolicy": {"shareDistribution": [_share("a", 0.0)]}}, "weightFactor"),
        ({"fairsharePolicy": {"shareDistribution": [_share("a", 1000.0)]}}, "weightFactor"),
        ({"fairsharePolicy": {"shareDistribution": [_share("team-a")]}}, "shareIdentifier"),
        ({"fairsharePolicy": {"shareDistribution": [_share("a**")]}}, "shareIdentifier"),
        ({"fairsharePolicy": {"shareDistribution": [_share("x" * 256)]}}, "shareIdentifier"),
        (
            {"fairsharePolicy": {"shareDistribution": [_share("UserA*"), _share("UserA1")]}},
            "shareDistribution",
        ),
        (
            {"fairsharePolicy": {"shareDistribution": [_share("dup"), _share("dup")]}},
            "shareDistribution",
        ),
        ({"quotaSharePolicy": {"idleResourceAssignmentStrategy": "LIFO"}}, "idleResource"),
        (
            {
                "fairsharePolicy": {},
                "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"},
            },
            "quotaSharePolicy",
        ),
        ({"tags": {"aws:x": "y"}}, "aws:"),
    ],
)
def test_an_invalid_create_is_a_client_exception_naming_the_field(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    request = {"name": unique("bad"), **change}
    with rejected(field):
        shared_batch.create_scheduling_policy(**request)
    assert describe(shared_batch, PREFIX + request["name"]) == []


def test_a_duplicate_name_is_refused_and_the_original_is_unchanged(shared_batch: Any) -> None:
    name = unique("fair")
    arn = fairshare_policy(shared_batch, name, computeReservation=5)
    before = describe(shared_batch, arn)
    with rejected(name, "already exists"):
        quota_policy(shared_batch, name)
    assert describe(shared_batch, arn) == before


def test_update_replaces_the_policy_of_the_same_kind(shared_batch: Any) -> None:
    arn = fairshare_policy(shared_batch, unique("fair"), computeReservation=5)
    assert (
        shared_batch.update_scheduling_policy(arn=arn, fairsharePolicy={"shareDecaySeconds": 60})[
            "ResponseMetadata"
        ]["HTTPStatusCode"]
        == 200
    )
    [policy] = describe(shared_batch, arn)
    assert policy["fairsharePolicy"]["shareDecaySeconds"] == 60
    assert "computeReservation" not in policy["fairsharePolicy"]
    quota = quota_policy(shared_batch, unique("quota"))
    shared_batch.update_scheduling_policy(
        arn=quota, quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}
    )
    assert describe(shared_batch, quota)[0]["quotaSharePolicy"] == {
        "idleResourceAssignmentStrategy": "FIFO"
    }


def test_a_policy_never_changes_kind(shared_batch: Any) -> None:
    fair = fairshare_policy(shared_batch, unique("fair"))
    quota = quota_policy(shared_batch, unique("quota"))
    before = describe(shared_batch, fair, quota)
    with rejected("fair"):
        shared_batch.update_scheduling_policy(
            arn=fair, quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}
        )
    with rejected("quota"):
        shared_batch.update_scheduling_policy(arn=quota, fairsharePolicy={})
    assert describe(shared_batch, fair, quota) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fairsharePolicy": {"computeReservation": 100}}, "computeReservation"),
        ({"fairsharePolicy": {"shareDistribution": [_share("A*"), _share("AB")]}}, "overlap"),
    ],
)
def test_an_invalid_update_changes_nothing(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    arn = fairshare_policy(shared_batch, unique("fair"), computeReservation=5)
    before = describe(shared_batch, arn)
    with rejected(field):
        shared_batch.update_scheduling_policy(arn=arn, **change)
    assert describe(shared_batch, arn) == before


def test_policies_are_addressed_only_by_arn(shared_batch: Any) -> None:
    name = unique("fair")
    arn = fairshare_policy(shared_batch, name)
    assert describe(shared_batch, name) == []
    assert describe(shared_batch, arn, PREFIX + "missing", arn) == describe(shared_batch, arn)
    with rejected(name):
        shared_batch.update_scheduling_policy(arn=name, fairsharePolicy={})
    with rejected(name):
        shared_batch.delete_scheduling_policy(arn=name)
    with rejected("missing"):
        shared_batch.delete_scheduling_policy(arn=PREFIX + "missing")
    with rejected("arns"):
        shared_batch.describe_scheduling_policies(arns=[])


def test_a_policy_in_use_cannot_be_deleted(shared_batch: Any) -> None:
    arn = fairshare_policy(shared_batch, unique("fair"))
    queue = parked_queue(shared_batch, unique("q"), policy_arn=arn)
    qm = quota_queue(shared_batch, unique("qm"))
    qm_policy = f"{PREFIX}{qm}-policy"
    with rejected(queue):
        shared_batch.delete_scheduling_policy(arn=arn)
    with rejected(qm):
        shared_batch.delete_scheduling_policy(arn=qm_policy)
    assert len(describe(shared_batch, arn, qm_policy)) == 2
    shared_batch.update_job_queue(jobQueue=queue, state="DISABLED")
    shared_batch.delete_job_queue(jobQueue=queue)
    shared_batch.delete_scheduling_policy(arn=arn)
    assert describe(shared_batch, arn) == []


def test_list_pages_through_every_policy_once(batch: Any) -> None:
    arns = [fairshare_policy(batch, f"p{i}") for i in range(5)]
    first = batch.list_scheduling_policies(maxResults=2)
    assert first["schedulingPolicies"] == [{"arn": a} for a in arns[:2]]
    seen: list[str] = []
    for page in batch.get_paginator("list_scheduling_policies").paginate(
        PaginationConfig={"PageSize": 2}
    ):
        seen.extend(p["arn"] for p in page["schedulingPolicies"])
    assert seen == arns
    assert "nextToken" not in batch.list_scheduling_policies()
    with rejected("maxResults"):
        batch.list_scheduling_policies(maxResults=101)
    with rejected("nextToken"):
        batch.list_scheduling_policies(nextToken=first["nextToken"] + "x")
    batch.delete_scheduling_policy(arn=arns[0])
    listed = batch.list_scheduling_policies()["schedulingPolicies"]
    assert [p["arn"] for p in listed] == arns[1:]
