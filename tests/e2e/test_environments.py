"""Service environments: Create / Update / Describe / Delete (spec §2.1, §3.7-§3.10)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from typing import Any

import pytest

from batchd.domain.resources import ServiceEnvironment
from batchd.storage.store import Store
from tests.support.builders import environment, parked_queue, rejected, unique
from tests.support.server import RunningServer

ARN_PREFIX = "arn:aws:batch:us-east-1:123456789012:service-environment/"


def describe(batch: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = batch.describe_service_environments(serviceEnvironments=[name])[
        "serviceEnvironments"
    ]
    return found


def test_a_created_environment_is_described_as_aws_describes_it(shared_batch: Any) -> None:
    name = unique("env")
    created = shared_batch.create_service_environment(
        serviceEnvironmentName=name,
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 5, "capacityUnit": "NUM_INSTANCES"}],
    )
    assert created["serviceEnvironmentName"] == name
    assert created["serviceEnvironmentArn"] == ARN_PREFIX + name
    [env] = describe(shared_batch, name)
    assert env == {
        "serviceEnvironmentName": name,
        "serviceEnvironmentArn": ARN_PREFIX + name,
        "serviceEnvironmentType": "SAGEMAKER_TRAINING",
        "state": "ENABLED",
        "status": "VALID",
        "capacityLimits": [{"maxCapacity": 5, "capacityUnit": "NUM_INSTANCES"}],
        "tags": {},
    }


def test_an_environment_is_found_by_name_or_arn_and_unknown_names_are_omitted(
    shared_batch: Any,
) -> None:
    name = unique("env")
    arn = environment(shared_batch, name, limits=[(3, "ml.m5.large"), (1, "ml.g5.xlarge")])
    found = shared_batch.describe_service_environments(
        serviceEnvironments=[name, arn, "no-such-env", ARN_PREFIX + "missing"]
    )["serviceEnvironments"]
    assert [e["serviceEnvironmentArn"] for e in found] == [arn]
    assert found[0]["capacityLimits"] == [
        {"maxCapacity": 3, "capacityUnit": "ml.m5.large"},
        {"maxCapacity": 1, "capacityUnit": "ml.g5.xlarge"},
    ]
    assert found[0]["state"] == "DISABLED"


GOOD: dict[str, Any] = {
    "serviceEnvironmentType": "SAGEMAKER_TRAINING",
    "capacityLimits": [{"maxCapacity": 5, "capacityUnit": "NUM_INSTANCES"}],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"serviceEnvironmentName": "has space"}, "serviceEnvironmentName"),
        ({"serviceEnvironmentName": "x" * 129}, "serviceEnvironmentName"),
        ({"serviceEnvironmentName": "dot.ted"}, "serviceEnvironmentName"),
        ({"serviceEnvironmentType": "ECS"}, "serviceEnvironmentType"),
        ({"state": "PAUSED"}, "state"),
        ({"capacityLimits": []}, "capacityLimits"),
        (
            {
                "capacityLimits": [
                    {"maxCapacity": 1, "capacityUnit": f"ml.m5.x{i}"} for i in range(6)
                ]
            },
            "capacityLimits",
        ),
        ({"capacityLimits": [{"maxCapacity": 0, "capacityUnit": "NUM_INSTANCES"}]}, "maxCapacity"),
        ({"capacityLimits": [{"maxCapacity": -3, "capacityUnit": "NUM_INSTANCES"}]}, "maxCapacity"),
        ({"capacityLimits": [{"maxCapacity": 2, "capacityUnit": "GPUS"}]}, "capacityUnit"),
        ({"capacityLimits": [{"maxCapacity": 2, "capacityUnit": "m5.large"}]}, "capacityUnit"),
        ({"capacityLimits": [{"capacityUnit": "NUM_INSTANCES"}]}, "maxCapacity"),
        ({"capacityLimits": [{"maxCapacity": 2}]}, "capacityUnit"),
        (
            {
                "capacityLimits": [
                    {"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"},
                    {"maxCapacity": 2, "capacityUnit": "ml.m5.large"},
                ]
            },
            "NUM_INSTANCES",
        ),
        (
            {
                "capacityLimits": [
                    {"maxCapacity": 2, "capacityUnit": "ml.m5.large"},
                    {"maxCapacity": 3, "capacityUnit": "ml.m5.large"},
                ]
            },
            "capacityUnit",
        ),
        ({"tags": {"aws:owner": "me"}}, "aws:"),
        ({"tags": {"k" * 129: "v"}}, "tags"),
        ({"tags": {"k": "v" * 257}}, "tags"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags"),
    ],
)
def test_an_invalid_create_is_a_client_exception_naming_the_field(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    name = unique("bad")
    request = {"serviceEnvironmentName": name, **GOOD, **change}
    with rejected(field):
        shared_batch.create_service_environment(**request)
    assert describe(shared_batch, request["serviceEnvironmentName"][:128]) == []


def test_a_duplicate_name_is_refused_and_the_original_is_unchanged(shared_batch: Any) -> None:
    name = unique("env")
    environment(shared_batch, name, limits=[(7, "NUM_INSTANCES")])
    before = describe(shared_batch, name)
    with rejected(name, "already exists"):
        environment(shared_batch, name, limits=[(9, "NUM_INSTANCES")], state="ENABLED")
    assert describe(shared_batch, name) == before


def test_update_changes_state_and_replaces_capacity_limits_by_name_or_arn(
    shared_batch: Any,
) -> None:
    name = unique("env")
    arn = environment(shared_batch, name)
    out = shared_batch.update_service_environment(serviceEnvironment=name, state="ENABLED")
    assert (out["serviceEnvironmentName"], out["serviceEnvironmentArn"]) == (name, arn)
    assert describe(shared_batch, name)[0]["state"] == "ENABLED"
    shared_batch.update_service_environment(
        serviceEnvironment=arn,
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "ml.m5.large"}],
    )
    [env] = describe(shared_batch, name)
    assert env["capacityLimits"] == [{"maxCapacity": 1, "capacityUnit": "ml.m5.large"}]
    assert env["state"] == "ENABLED"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"state": "OFF"}, "state"),
        ({"capacityLimits": []}, "capacityLimits"),
        ({"capacityLimits": [{"maxCapacity": 0, "capacityUnit": "NUM_INSTANCES"}]}, "maxCapacity"),
        ({"capacityLimits": [{"maxCapacity": 1, "capacityUnit": "bogus"}]}, "capacityUnit"),
    ],
)
def test_an_invalid_update_is_refused_and_changes_nothing(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    name = unique("env")
    environment(shared_batch, name)
    before = describe(shared_batch, name)
    with rejected(field):
        shared_batch.update_service_environment(serviceEnvironment=name, **change)
    assert describe(shared_batch, name) == before


def test_updating_or_deleting_an_unknown_environment_is_a_client_exception(
    shared_batch: Any,
) -> None:
    with rejected("nowhere"):
        shared_batch.update_service_environment(serviceEnvironment="nowhere", state="ENABLED")
    with rejected("nowhere"):
        shared_batch.delete_service_environment(serviceEnvironment=ARN_PREFIX + "nowhere")
    foreign = "arn:aws:batch:eu-west-1:999999999999:service-environment/elsewhere"
    with rejected("serviceEnvironment"):
        shared_batch.update_service_environment(serviceEnvironment=foreign, state="ENABLED")


def test_the_kind_of_limits_cannot_change_while_a_queue_uses_the_environment(
    shared_batch: Any,
) -> None:
    queue = parked_queue(shared_batch, unique("q"))
    before = describe(shared_batch, f"{queue}-env")
    with rejected(f"{queue}-env"):
        shared_batch.update_service_environment(
            serviceEnvironment=f"{queue}-env",
            capacityLimits=[{"maxCapacity": 4, "capacityUnit": "ml.m5.large"}],
        )
    assert describe(shared_batch, f"{queue}-env") == before
    shared_batch.update_service_environment(
        serviceEnvironment=f"{queue}-env",
        capacityLimits=[{"maxCapacity": 9, "capacityUnit": "NUM_INSTANCES"}],
    )
    assert describe(shared_batch, f"{queue}-env")[0]["capacityLimits"][0]["maxCapacity"] == 9


def test_delete_needs_a_disabled_environment_that_no_queue_uses(shared_batch: Any) -> None:
    name = unique("env")
    environment(shared_batch, name, state="ENABLED", tags={"team": "a"})
    with rejected(name, "DISABLED"):
        shared_batch.delete_service_environment(serviceEnvironment=name)
    assert len(describe(shared_batch, name)) == 1

    queue = parked_queue(shared_batch, unique("q"))
    with rejected(queue):
        shared_batch.delete_service_environment(serviceEnvironment=f"{queue}-env")
    assert len(describe(shared_batch, f"{queue}-env")) == 1

    shared_batch.update_service_environment(serviceEnvironment=name, state="DISABLED")
    shared_batch.delete_service_environment(serviceEnvironment=ARN_PREFIX + name)
    assert describe(shared_batch, name) == []
    environment(shared_batch, name)
    [again] = describe(shared_batch, name)
    assert again["tags"] == {}, "deleting an environment deletes its tags"


def test_describe_without_names_pages_through_every_environment_once(batch: Any) -> None:
    names = [f"env-{i:02d}" for i in range(7)]
    for name in names:
        environment(batch, name)
    first = batch.describe_service_environments(maxResults=3)
    assert [e["serviceEnvironmentName"] for e in first["serviceEnvironments"]] == names[:3]
    seen: list[str] = []
    paginator = batch.get_paginator("describe_service_environments")
    for page in paginator.paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["serviceEnvironments"]) <= 2
        seen.extend(e["serviceEnvironmentName"] for e in page["serviceEnvironments"])
    assert seen == names
    everything = batch.describe_service_environments()
    assert "nextToken" not in everything
    assert len(everything["serviceEnvironments"]) == 7


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"maxResults": 0}, "maxResults"),
        ({"maxResults": 101}, "maxResults"),
        ({"nextToken": "not-a-token"}, "nextToken"),
        ({"serviceEnvironments": [f"e{i}" for i in range(101)]}, "serviceEnvironments"),
    ],
)
def test_describe_refuses_bad_paging_arguments(
    shared_batch: Any, request_: dict[str, Any], field: str
) -> None:
    with rejected(field):
        shared_batch.describe_service_environments(**request_)


def test_a_forged_token_or_one_of_another_listing_is_refused(shared_batch: Any) -> None:
    for _ in range(2):
        parked_queue(shared_batch, unique("q"))
    token = shared_batch.describe_job_queues(maxResults=1)["nextToken"]
    with rejected("nextToken"):
        shared_batch.describe_service_environments(maxResults=1, nextToken=token)
    token = shared_batch.describe_service_environments(maxResults=1)["nextToken"]
    version, scope, _ = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for cursor in ([10**30], ["1"], [1.5], []):
        forged = base64.urlsafe_b64encode(json.dumps([version, scope, cursor]).encode()).decode()
        with rejected("nextToken"):
            shared_batch.describe_service_environments(nextToken=forged)


def test_the_fifty_first_environment_is_refused(batch: Any) -> None:
    for i in range(50):
        environment(batch, f"e{i}")
    with rejected("50"):
        environment(batch, "one-too-many")
    assert describe(batch, "one-too-many") == []
    batch.delete_service_environment(serviceEnvironment="e0")
    environment(batch, "one-too-many")


def test_creating_an_environment_with_an_unknown_backend_is_refused(shared_batch: Any) -> None:
    name = unique("env")
    with rejected("batchd:backend", "'nope'", "fake, local"):
        environment(shared_batch, name, tags={"batchd:backend": "nope"})
    assert describe(shared_batch, name) == []
    environment(shared_batch, name, tags={"batchd:backend": "fake"})
    assert describe(shared_batch, name)[0]["tags"] == {"batchd:backend": "fake"}


async def _tag_behind_the_api(db_url: str, name: str, tags: dict[str, str]) -> None:
    """What a database written before backend tags were checked can hold."""
    store = await Store.open(db_url)
    try:
        await store.resources.modify(
            ServiceEnvironment, name, lambda env: dataclasses.replace(env, tags=tags)
        )
    finally:
        await store.close()


def test_an_environment_tagged_with_an_unknown_backend_is_not_updated_into_service(
    server: RunningServer, batch: Any
) -> None:
    environment(batch, "legacy")
    asyncio.run(
        _tag_behind_the_api(server.settings.database_url, "legacy", {"batchd:backend": "gone"})
    )
    with rejected("batchd:backend", "'gone'", "fake, local"):
        batch.update_service_environment(serviceEnvironment="legacy", state="ENABLED")
    assert describe(batch, "legacy")[0]["state"] == "DISABLED"
    # While it stays DISABLED it can still be changed, and tagging repairs it.
    batch.update_service_environment(
        serviceEnvironment="legacy",
        capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}],
    )
    arn = describe(batch, "legacy")[0]["serviceEnvironmentArn"]
    batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "fake"})
    batch.update_service_environment(serviceEnvironment="legacy", state="ENABLED")
    assert describe(batch, "legacy")[0]["state"] == "ENABLED"


def test_an_enabled_environment_with_an_unknown_backend_can_still_be_disabled(
    server: RunningServer, batch: Any
) -> None:
    environment(batch, "legacy", state="ENABLED")
    asyncio.run(
        _tag_behind_the_api(server.settings.database_url, "legacy", {"batchd:backend": "gone"})
    )
    with rejected("batchd:backend"):
        batch.update_service_environment(
            serviceEnvironment="legacy",
            capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}],
        )
    batch.update_service_environment(serviceEnvironment="legacy", state="DISABLED")
    assert describe(batch, "legacy")[0]["state"] == "DISABLED"
