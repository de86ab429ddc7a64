"""SAGEMAKER_TRAINING job queues: Create / Update / Describe / Delete (spec §2.2, §3.11)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    environment,
    fairshare_policy,
    parked_queue,
    quota_policy,
    rejected,
    submit,
    unique,
)

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"
TIME_LIMIT = {
    "reason": "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
    "state": "RUNNABLE",
    "maxTimeSeconds": 600,
    "action": "TERMINATE",
}


def describe(batch: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = batch.describe_job_queues(jobQueues=[name])["jobQueues"]
    return found


def create(batch: Any, name: str, env: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = batch.create_job_queue(
        jobQueueName=name,
        jobQueueType=extra.pop("jobQueueType", "SAGEMAKER_TRAINING"),
        priority=extra.pop("priority", 1),
        serviceEnvironmentOrder=extra.pop(
            "serviceEnvironmentOrder", [{"order": 1, "serviceEnvironment": env}]
        ),
        **extra,
    )
    return response


def test_a_created_queue_is_described_as_aws_describes_it(shared_batch: Any) -> None:
    env, name = unique("env"), unique("q")
    env_arn = environment(shared_batch, env)
    out = create(shared_batch, name, env, priority=7)
    assert out == {
        "jobQueueName": name,
        "jobQueueArn": f"{ACCOUNT}:job-queue/{name}",
        "ResponseMetadata": out["ResponseMetadata"],
    }
    [queue] = describe(shared_batch, name)
    assert queue == {
        "jobQueueName": name,
        "jobQueueArn": f"{ACCOUNT}:job-queue/{name}",
        "state": "ENABLED",
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": 7,
        "computeEnvironmentOrder": [],
        "serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": env_arn}],
        "jobQueueType": "SAGEMAKER_TRAINING",
        "tags": {},
        "jobStateTimeLimitActions": [],
    }


def test_a_queue_created_with_arns_policy_and_time_limits_echoes_them(shared_batch: Any) -> None:
    env, name = unique("env"), unique("q")
    env_arn = environment(shared_batch, env)
    policy = fairshare_policy(shared_batch, unique("fair"))
    create(
        shared_batch,
        name,
        env,
        serviceEnvironmentOrder=[{"order": 3, "serviceEnvironment": env_arn}],
        schedulingPolicyArn=policy,
        state="DISABLED",
        jobStateTimeLimitActions=[TIME_LIMIT],
        tags={"team": "ml"},
    )
    [queue] = describe(shared_batch, f"{ACCOUNT}:job-queue/{name}")
    assert queue["serviceEnvironmentOrder"] == [{"order": 3, "serviceEnvironment": env_arn}]
    assert queue["schedulingPolicyArn"] == policy
    assert queue["state"] == "DISABLED"
    assert queue["jobStateTimeLimitActions"] == [TIME_LIMIT]
    assert queue["tags"] == {"team": "ml"}


def _action(**change: Any) -> list[dict[str, Any]]:
    return [{**TIME_LIMIT, **change}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"jobQueueName": "bad name"}, "jobQueueName"),
        ({"jobQueueName": "q" * 129}, "jobQueueName"),
        ({"jobQueueType": "ECS"}, "jobQueueType"),
        ({"jobQueueType": "NOT_A_TYPE"}, "jobQueueType"),
        ({"priority": -1}, "priority"),
        ({"priority": 1001}, "priority"),
        ({"state": "ON"}, "state"),
        ({"serviceEnvironmentOrder": []}, "serviceEnvironmentOrder"),
        (
            {"serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "no-such-env"}]},
            "no-such-env",
        ),
        (
            {"computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}]},
            "computeEnvironmentOrder",
        ),
        ({"schedulingPolicyArn": f"{ACCOUNT}:scheduling-policy/none"}, "schedulingPolicyArn"),
        ({"jobStateTimeLimitActions": _action(action="CANCEL")}, "action"),
        ({"jobStateTimeLimitActions": _action(state="RUNNING")}, "state"),
        ({"jobStateTimeLimitActions": _action(maxTimeSeconds=599)}, "maxTimeSeconds"),
        ({"jobStateTimeLimitActions": _action(maxTimeSeconds=86401)}, "maxTimeSeconds"),
        ({"jobStateTimeLimitActions": _action(reason="CAPACITY:ANYTHING")}, "reason"),
        ({"jobStateTimeLimitActions": _action() + _action()}, "reason"),
        ({"tags": {"aws:team": "x"}}, "aws:"),
    ],
)
def test_an_invalid_create_is_a_client_exception_naming_the_field(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    env, name = unique("env"), unique("q")
    environment(shared_batch, env)
    request = {"jobQueueName": name, **change}
    with rejected(field):
        create(shared_batch, request.pop("jobQueueName"), env, **request)
    assert describe(shared_batch, name) == []


def test_a_queue_may_not_name_two_environments(shared_batch: Any) -> None:
    a, b = unique("env"), unique("env")
    environment(shared_batch, a)
    environment(shared_batch, b)
    name = unique("q")
    order = [{"order": 1, "serviceEnvironment": a}, {"order": 2, "serviceEnvironment": b}]
    with rejected("serviceEnvironmentOrder"):
        create(shared_batch, name, a, serviceEnvironmentOrder=order)
    assert describe(shared_batch, name) == []


def test_environment_kind_and_policy_kind_must_match(shared_batch: Any) -> None:
    typed = unique("env")
    environment(shared_batch, typed, limits=[(4, "ml.m5.large")])
    counted = unique("env")
    environment(shared_batch, counted)
    with rejected(typed):
        create(shared_batch, unique("q"), typed)
    with rejected(counted):
        create(
            shared_batch,
            unique("q"),
            counted,
            schedulingPolicyArn=quota_policy(shared_batch, unique("quota")),
        )
    first = unique("q")
    create(shared_batch, first, typed, schedulingPolicyArn=quota_policy(shared_batch, unique("p")))
    second = unique("q")
    with rejected(typed, first):
        create(
            shared_batch, second, typed, schedulingPolicyArn=quota_policy(shared_batch, unique("p"))
        )
    assert describe(shared_batch, second) == []


def test_several_fifo_queues_may_share_one_environment(shared_batch: Any) -> None:
    env = unique("env")
    environment(shared_batch, env)
    names = [unique("q") for _ in range(3)]
    for priority, name in enumerate(names):
        create(shared_batch, name, env, priority=priority)
    found = shared_batch.describe_job_queues(jobQueues=names)["jobQueues"]
    assert [q["priority"] for q in found] == [0, 1, 2]


def test_a_duplicate_name_is_refused_and_the_original_is_unchanged(shared_batch: Any) -> None:
    name = parked_queue(shared_batch, unique("q"), priority=3)
    before = describe(shared_batch, name)
    with rejected(name, "already exists"):
        create(shared_batch, name, f"{name}-env", priority=9)
    assert describe(shared_batch, name) == before


def test_update_changes_priority_state_order_and_time_limits(shared_batch: Any) -> None:
    name = parked_queue(shared_batch, unique("q"))
    other_env = environment(shared_batch, unique("env"))
    out = shared_batch.update_job_queue(
        jobQueue=name,
        priority=500,
        state="DISABLED",
        serviceEnvironmentOrder=[{"order": 2, "serviceEnvironment": other_env}],
        jobStateTimeLimitActions=[TIME_LIMIT],
    )
    assert out["jobQueueArn"] == f"{ACCOUNT}:job-queue/{name}"
    [queue] = describe(shared_batch, name)
    assert queue["priority"] == 500
    assert queue["state"] == "DISABLED"
    assert queue["serviceEnvironmentOrder"] == [{"order": 2, "serviceEnvironment": other_env}]
    assert queue["jobStateTimeLimitActions"] == [TIME_LIMIT]
    shared_batch.update_job_queue(jobQueue=queue["jobQueueArn"], jobStateTimeLimitActions=[])
    assert describe(shared_batch, name)[0]["jobStateTimeLimitActions"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": 1001}, "priority"),
        ({"state": "PAUSED"}, "state"),
        ({"serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "gone"}]}, "gone"),
        ({"serviceEnvironmentOrder": []}, "serviceEnvironmentOrder"),
        ({"jobStateTimeLimitActions": _action(maxTimeSeconds=10)}, "maxTimeSeconds"),
        ({"schedulingPolicyArn": f"{ACCOUNT}:scheduling-policy/none"}, "schedulingPolicyArn"),
    ],
)
def test_an_invalid_update_is_refused_and_changes_nothing(
    shared_batch: Any, change: dict[str, Any], field: str
) -> None:
    name = parked_queue(shared_batch, unique("q"))
    before = describe(shared_batch, name)
    with rejected(field):
        shared_batch.update_job_queue(jobQueue=name, **change)
    assert describe(shared_batch, name) == before


def test_a_fifo_queue_never_gets_a_policy(shared_batch: Any) -> None:
    name = parked_queue(shared_batch, unique("q"))
    with rejected(name, "FIFO"):
        shared_batch.update_job_queue(
            jobQueue=name, schedulingPolicyArn=fairshare_policy(shared_batch, unique("fair"))
        )
    assert "schedulingPolicyArn" not in describe(shared_batch, name)[0]


def test_a_policy_is_replaced_only_by_one_of_the_same_kind(shared_batch: Any) -> None:
    first = fairshare_policy(shared_batch, unique("fair"))
    name = parked_queue(shared_batch, unique("q"), policy_arn=first)
    second = fairshare_policy(shared_batch, unique("fair"), computeReservation=10)
    shared_batch.update_job_queue(jobQueue=name, schedulingPolicyArn=second)
    assert describe(shared_batch, name)[0]["schedulingPolicyArn"] == second
    with rejected(name):
        shared_batch.update_job_queue(
            jobQueue=name, schedulingPolicyArn=quota_policy(shared_batch, unique("quota"))
        )
    assert describe(shared_batch, name)[0]["schedulingPolicyArn"] == second


def test_unknown_queues_are_omitted_from_describe_and_refused_elsewhere(
    shared_batch: Any,
) -> None:
    name = parked_queue(shared_batch, unique("q"))
    found = shared_batch.describe_job_queues(
        jobQueues=["missing", name, f"{ACCOUNT}:job-queue/{name}", f"{ACCOUNT}:job-queue/gone"]
    )["jobQueues"]
    assert [q["jobQueueName"] for q in found] == [name]
    with rejected("missing"):
        shared_batch.update_job_queue(jobQueue="missing", priority=2)
    with rejected("missing"):
        shared_batch.delete_job_queue(jobQueue="missing")
    with rejected("jobQueue"):
        shared_batch.delete_job_queue(jobQueue="arn:aws:batch:us-east-1:123456789012:job-queue/")


def test_delete_needs_a_disabled_queue_and_ends_its_queued_jobs(shared_batch: Any) -> None:
    name = parked_queue(shared_batch, unique("q"), tags={"a": "b"})
    job = submit(shared_batch, name, "doomed")
    with rejected(name, "DISABLED"):
        shared_batch.delete_job_queue(jobQueue=name)
    assert len(describe(shared_batch, name)) == 1
    shared_batch.update_job_queue(jobQueue=name, state="DISABLED")
    shared_batch.delete_job_queue(jobQueue=f"{ACCOUNT}:job-queue/{name}")
    assert describe(shared_batch, name) == []
    ended = shared_batch.describe_service_job(jobId=job["jobId"])
    assert ended["status"] == "FAILED"
    assert ended["isTerminated"] is True
    assert ended["statusReason"] == "Job queue deleted"
    create(shared_batch, name, f"{name}-env")
    assert describe(shared_batch, name)[0]["tags"] == {}, "deleting a queue deletes its tags"


def test_describe_without_names_pages_through_every_queue_once(batch: Any) -> None:
    environment(batch, "env")
    names = [f"q{i}" for i in range(5)]
    for name in names:
        create(batch, name, "env")
    seen: list[str] = []
    for page in batch.get_paginator("describe_job_queues").paginate(
        PaginationConfig={"PageSize": 2}
    ):
        seen.extend(q["jobQueueName"] for q in page["jobQueues"])
    assert seen == names
    with rejected("maxResults"):
        batch.describe_job_queues(maxResults=0)
    with rejected("nextToken"):
        batch.describe_job_queues(nextToken="garbage!")
    with rejected("jobQueues"):
        batch.describe_job_queues(jobQueues=[f"q{i}" for i in range(101)])


def test_the_fifty_first_queue_is_refused(batch: Any) -> None:
    environment(batch, "env")
    for i in range(50):
        create(batch, f"q{i}", "env")
    with rejected("50"):
        create(batch, "one-too-many", "env")
    assert describe(batch, "one-too-many") == []
