"""SubmitServiceJob: what is stored, every validation rule, and clientToken idempotency.

All queues here sit on DISABLED service environments, so submitted jobs stay queued
whatever the scheduler does (spec §12 #18).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.builders import (
    all_jobs,
    fair_queue,
    parked_queue,
    post_many,
    quota_queue,
    quota_share,
    rejected,
    submit,
    submit_many,
    unique,
)
from tests.support.server import RunningServer, payload

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class World:
    fifo: str
    fair: str
    quota: str
    closed: str


@pytest.fixture(scope="module")
def world(shared_batch: Any) -> World:
    quota = quota_queue(shared_batch, "quota")
    quota_share(shared_batch, quota, "teamA")
    quota_share(shared_batch, quota, "off", state="DISABLED")
    return World(
        fifo=parked_queue(shared_batch, "fifo"),
        fair=fair_queue(shared_batch, "fair"),
        quota=quota,
        closed=parked_queue(shared_batch, "closed", state="DISABLED"),
    )


def named(batch: Any, queue: str, name: str) -> list[dict[str, Any]]:
    return all_jobs(batch, queue, filters=[{"name": "JOB_NAME", "values": [name]}])


def test_a_submitted_job_answers_with_its_arn_name_and_uuid(
    shared_batch: Any, world: World
) -> None:
    out = submit(shared_batch, world.fifo, "answer")
    assert UUID.match(out["jobId"])
    assert out["jobArn"] == f"{ACCOUNT}:service-job/{out['jobId']}"
    assert out["jobName"] == "answer"


def test_a_job_is_described_with_everything_it_was_submitted_with(
    shared_batch: Any, world: World
) -> None:
    body = payload(instances=2, instance_type="ml.g5.xlarge", name="described")
    before = int(time.time() * 1000)
    out = submit(
        shared_batch,
        f"{ACCOUNT}:job-queue/{world.fifo}",
        "described",
        serviceRequestPayload=body,
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Received status*"}],
        },
        schedulingPriority=42,
        preemptionConfiguration={"preemptionRetriesBeforeTermination": 2},
        timeoutConfig={"attemptDurationSeconds": 3600},
        tags={"project": "x", "owner": ""},
    )
    after = int(time.time() * 1000)
    job = dict(shared_batch.describe_service_job(jobId=out["jobId"]))
    job.pop("ResponseMetadata")
    created = job.pop("createdAt")
    status = job.pop("status")
    assert before <= created <= after + 1
    assert status in ("SUBMITTED", "RUNNABLE")
    job.pop("statusReason", None)  # the scheduler may say why a job waits
    assert job == {
        "jobId": out["jobId"],
        "jobArn": out["jobArn"],
        "jobName": "described",
        "jobQueue": f"{ACCOUNT}:job-queue/{world.fifo}",
        "serviceJobType": "SAGEMAKER_TRAINING",
        "serviceRequestPayload": body,
        "isTerminated": False,
        "attempts": [],
        "capacityUsage": [{"capacityUnit": "NUM_INSTANCES", "quantity": 2.0}],
        "retryStrategy": {
            "attempts": 3,
            "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Received status*"}],
        },
        "schedulingPriority": 42,
        "preemptionConfiguration": {"preemptionRetriesBeforeTermination": 2},
        "timeoutConfig": {"attemptDurationSeconds": 3600},
        "tags": {"project": "x", "owner": ""},
    }


def test_members_not_given_are_omitted_and_lists_echo_empty(
    shared_batch: Any, world: World
) -> None:
    out = submit(shared_batch, world.fifo, "bare", retryStrategy={"attempts": 2})
    job = shared_batch.describe_service_job(jobId=out["jobArn"])
    assert job["retryStrategy"] == {"attempts": 2, "evaluateOnExit": []}
    assert job["tags"] == {} and job["attempts"] == [] and job["isTerminated"] is False
    for absent in (
        "startedAt",
        "stoppedAt",
        "scheduledAt",
        "latestAttempt",
        "schedulingPriority",
        "shareIdentifier",
        "quotaShareName",
        "preemptionConfiguration",
        "timeoutConfig",
        "preemptionSummary",
    ):
        assert absent not in job, absent
    plain = shared_batch.describe_service_job(jobId=submit(shared_batch, world.fifo)["jobId"])
    assert "retryStrategy" not in plain


def test_retry_actions_are_accepted_in_any_case(shared_batch: Any, world: World) -> None:
    rules = [{"action": "Retry", "onStatusReason": "A*"}, {"action": "exit", "onStatusReason": "*"}]
    out = submit(
        shared_batch, world.fifo, "cased", retryStrategy={"attempts": 2, "evaluateOnExit": rules}
    )
    job = shared_batch.describe_service_job(jobId=out["jobId"])
    assert [r["onStatusReason"] for r in job["retryStrategy"]["evaluateOnExit"]] == ["A*", "*"]


RESOURCE_CONFIGS: dict[str, tuple[dict[str, Any] | None, int, list[dict[str, Any]]]] = {
    # name: (ResourceConfig, instances in all, usage by instance type)
    "one instance type": (
        {"InstanceType": "ml.m5.large", "InstanceCount": 3, "VolumeSizeInGB": 1},
        3,
        [{"capacityUnit": "ml.m5.large", "quantity": 3.0}],
    ),
    "instance groups": (
        {
            "InstanceGroups": [
                {"InstanceGroupName": "a", "InstanceType": "ml.m5.large", "InstanceCount": 1},
                {"InstanceGroupName": "b", "InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
            ],
            "VolumeSizeInGB": 1,
        },
        3,
        [
            {"capacityUnit": "ml.g5.xlarge", "quantity": 2.0},
            {"capacityUnit": "ml.m5.large", "quantity": 1.0},
        ],
    ),
    "serverless": (None, 0, []),
}


def _submitted_usage(
    batch: Any, queue: str, resource_config: dict[str, Any] | None, **extra: Any
) -> Any:
    body = json.loads(payload())
    if resource_config is None:
        del body["ResourceConfig"]
    else:
        body["ResourceConfig"] = resource_config
    out = submit(batch, queue, serviceRequestPayload=json.dumps(body), **extra)
    return batch.describe_service_job(jobId=out["jobId"])["capacityUsage"]


@pytest.mark.parametrize("case", list(RESOURCE_CONFIGS))
@pytest.mark.parametrize("kind", ["fifo", "fair"])
def test_capacity_usage_is_the_instance_count_where_limits_are_in_num_instances(
    shared_batch: Any, world: World, kind: str, case: str
) -> None:
    """AWS: "For service jobs, this is NUM_INSTANCES" with the payload's instance count."""
    resource_config, instances, _ = RESOURCE_CONFIGS[case]
    queue, extra = (world.fifo, {}) if kind == "fifo" else (world.fair, {"shareIdentifier": "a"})
    expected = [{"capacityUnit": "NUM_INSTANCES", "quantity": float(instances)}]
    usage = _submitted_usage(shared_batch, queue, resource_config, **extra)
    assert usage == (expected if instances else [])


@pytest.mark.parametrize("case", list(RESOURCE_CONFIGS))
def test_capacity_usage_is_per_instance_type_where_limits_are_per_instance_type(
    shared_batch: Any, world: World, case: str
) -> None:
    resource_config, _, by_type = RESOURCE_CONFIGS[case]
    usage = _submitted_usage(shared_batch, world.quota, resource_config, quotaShareName="teamA")
    assert usage == by_type


def test_payload_content_is_passed_through_unvalidated(shared_batch: Any, world: World) -> None:
    body = json.dumps({"NotSageMaker": True, "ResourceConfig": {"InstanceCount": "many"}})
    out = submit(shared_batch, world.fifo, serviceRequestPayload=body)
    job = shared_batch.describe_service_job(jobId=out["jobId"])
    assert job["serviceRequestPayload"] == body
    assert job["capacityUsage"] == []


def test_fair_share_and_quota_share_jobs_carry_their_share(shared_batch: Any, world: World) -> None:
    fair = submit(shared_batch, world.fair, shareIdentifier="teamA")
    assert shared_batch.describe_service_job(jobId=fair["jobId"])["shareIdentifier"] == "teamA"
    quota = submit(shared_batch, world.quota, quotaShareName="teamA")
    assert shared_batch.describe_service_job(jobId=quota["jobId"])["quotaShareName"] == "teamA"


def test_a_payload_of_exactly_ten_kib_is_accepted(shared_batch: Any, world: World) -> None:
    body = json.dumps({"TrainingJobName": "big", "Pad": ""})
    body = body.replace('""', '"' + "p" * (10 * 1024 - len(body)) + '"')
    assert len(body.encode()) == 10 * 1024
    out = submit(shared_batch, world.fifo, serviceRequestPayload=body)
    assert shared_batch.describe_service_job(jobId=out["jobId"])["serviceRequestPayload"] == body


TOO_BIG = json.dumps({"Pad": "p" * (10 * 1024)})


@pytest.mark.parametrize(
    ("queue", "change", "field"),
    [
        ("fifo", {"jobName": "has space"}, "jobName"),
        ("fifo", {"jobName": "j" * 129}, "jobName"),
        ("fifo", {"jobName": "dot.name"}, "jobName"),
        ("fifo", {"jobQueue": "no-such-queue"}, "no-such-queue"),
        ("fifo", {"jobQueue": "arn:aws:batch:us-east-1:999999999999:job-queue/fifo"}, "jobQueue"),
        ("closed", {}, "closed"),
        ("fifo", {"serviceJobType": "EKS"}, "serviceJobType"),
        ("fifo", {"serviceRequestPayload": "not json"}, "serviceRequestPayload"),
        ("fifo", {"serviceRequestPayload": "[1, 2]"}, "serviceRequestPayload"),
        ("fifo", {"serviceRequestPayload": TOO_BIG}, "serviceRequestPayload"),
        ("fifo", {"retryStrategy": {"attempts": 0}}, "attempts"),
        ("fifo", {"retryStrategy": {"attempts": 11}}, "attempts"),
        (
            "fifo",
            {"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "EXIT"}] * 6}},
            "evaluateOnExit",
        ),
        (
            "fifo",
            {"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "RESTART"}]}},
            "action",
        ),
        (
            "fifo",
            {
                "retryStrategy": {
                    "attempts": 2,
                    "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "x" * 513}],
                }
            },
            "onStatusReason",
        ),
        (
            "fifo",
            {
                "retryStrategy": {
                    "attempts": 2,
                    "evaluateOnExit": [{"action": "EXIT", "onStatusReason": "tab\there"}],
                }
            },
            "onStatusReason",
        ),
        ("fifo", {"schedulingPriority": -1}, "schedulingPriority"),
        ("fifo", {"schedulingPriority": 10000}, "schedulingPriority"),
        ("fifo", {"shareIdentifier": "teamA"}, "shareIdentifier"),
        ("fair", {}, "shareIdentifier"),
        ("fair", {"shareIdentifier": "team-a"}, "shareIdentifier"),
        ("fair", {"shareIdentifier": "team*"}, "shareIdentifier"),
        ("fair", {"shareIdentifier": "a", "quotaShareName": "teamA"}, "quotaShareName"),
        ("fifo", {"quotaShareName": "teamA"}, "quotaShareName"),
        ("quota", {}, "quotaShareName"),
        ("quota", {"quotaShareName": "nobody"}, "nobody"),
        ("quota", {"quotaShareName": "off"}, "off"),
        ("quota", {"quotaShareName": "teamA", "shareIdentifier": "a"}, "shareIdentifier"),
        (
            "fifo",
            {"preemptionConfiguration": {"preemptionRetriesBeforeTermination": -1}},
            "preemptionRetriesBeforeTermination",
        ),
        ("fifo", {"timeoutConfig": {"attemptDurationSeconds": 0}}, "attemptDurationSeconds"),
        ("fifo", {"tags": {"aws:batch": "x"}}, "aws:"),
        ("fifo", {"tags": {f"k{i}": "v" for i in range(51)}}, "tags"),
        ("fifo", {"tags": {"k": "v" * 257}}, "tags"),
        ("fifo", {"clientToken": "t" * 65}, "clientToken"),
    ],
)
def test_an_invalid_submit_is_a_client_exception_naming_the_field_and_stores_nothing(
    shared_batch: Any, world: World, queue: str, change: dict[str, Any], field: str
) -> None:
    name = unique("rejected")
    request: dict[str, Any] = {
        "jobName": name,
        "jobQueue": getattr(world, queue),
        "serviceJobType": "SAGEMAKER_TRAINING",
        "serviceRequestPayload": payload(),
        **change,
    }
    with rejected(field):
        shared_batch.submit_service_job(**request)
    for where in (world.fifo, world.fair, world.quota, world.closed):
        assert named(shared_batch, where, name) == []


def test_a_queue_accepts_jobs_again_once_enabled(shared_batch: Any) -> None:
    queue = parked_queue(shared_batch, unique("q"), state="DISABLED")
    with rejected(queue, "DISABLED"):
        submit(shared_batch, queue)
    shared_batch.update_job_queue(jobQueue=queue, state="ENABLED")
    assert submit(shared_batch, queue)["jobId"]
    shared_batch.update_job_queue(jobQueue=queue, state="DISABLED")
    with rejected(queue):
        submit(shared_batch, queue)


def test_a_disabled_service_environment_still_accepts_submissions(shared_batch: Any) -> None:
    queue = parked_queue(shared_batch, unique("q"))
    env = shared_batch.describe_service_environments(serviceEnvironments=[f"{queue}-env"])
    assert env["serviceEnvironments"][0]["state"] == "DISABLED"
    job = submit(shared_batch, queue)
    assert shared_batch.describe_service_job(jobId=job["jobId"])["status"] in (
        "SUBMITTED",
        "RUNNABLE",
    )


def test_a_fair_share_queue_takes_at_most_500_active_share_identifiers(
    shared_server: RunningServer, shared_batch: Any
) -> None:
    queue = fair_queue(shared_batch, unique("fs"))
    jobs = post_many(
        shared_server.url,
        "/v1/submitservicejob",
        [
            {
                "jobName": "j",
                "jobQueue": queue,
                "serviceJobType": "SAGEMAKER_TRAINING",
                "serviceRequestPayload": "{}",
                "shareIdentifier": f"share{i}",
            }
            for i in range(500)
        ],
    )
    submit(shared_batch, queue, shareIdentifier="share7")  # an active identifier is fine
    with rejected(queue, "500"):
        submit(shared_batch, queue, "extra", shareIdentifier="newcomer")
    assert named(shared_batch, queue, "extra") == []
    shared_batch.terminate_service_job(jobId=jobs[0]["jobId"], reason="make room")
    submit(shared_batch, queue, shareIdentifier="newcomer")


def test_the_same_token_and_request_returns_the_original_job(
    shared_batch: Any, world: World
) -> None:
    token, name = str(uuid.uuid4()), unique("idem")
    first = submit(shared_batch, world.fifo, name, clientToken=token, tags={"a": "1"})
    again = submit(shared_batch, world.fifo, name, clientToken=token, tags={"a": "1"})
    assert (again["jobId"], again["jobArn"], again["jobName"]) == (
        first["jobId"],
        first["jobArn"],
        first["jobName"],
    )
    assert [j["jobId"] for j in named(shared_batch, world.fifo, name)] == [first["jobId"]]


def test_the_same_token_with_other_parameters_is_refused(shared_batch: Any, world: World) -> None:
    token, name = str(uuid.uuid4()), unique("idem")
    first = submit(shared_batch, world.fifo, name, clientToken=token)
    changes: list[tuple[str, str, dict[str, Any]]] = [
        (world.fifo, name + "x", {}),
        (world.fifo, name, {"serviceRequestPayload": payload(instances=2)}),
        (world.fifo, name, {"schedulingPriority": 5}),
        (world.fifo, name, {"tags": {"k": "v"}}),
        (world.fair, name, {"shareIdentifier": "a"}),
    ]
    for queue, job_name, change in changes:
        with rejected("clientToken", token):
            submit(shared_batch, queue, job_name, clientToken=token, **change)
    assert [j["jobId"] for j in named(shared_batch, world.fifo, name)] == [first["jobId"]]
    assert named(shared_batch, world.fifo, name + "x") == []
    assert named(shared_batch, world.fair, name) == []


def test_a_token_still_answers_after_its_job_ended(shared_batch: Any, world: World) -> None:
    token = str(uuid.uuid4())
    first = submit(shared_batch, world.fifo, "ended", clientToken=token)
    shared_batch.terminate_service_job(jobId=first["jobId"], reason="done")
    assert submit(shared_batch, world.fifo, "ended", clientToken=token)["jobId"] == first["jobId"]


def test_without_a_token_identical_requests_make_distinct_jobs(
    shared_batch: Any, world: World
) -> None:
    name = unique("twin")
    a, b = submit(shared_batch, world.fifo, name), submit(shared_batch, world.fifo, name)
    assert a["jobId"] != b["jobId"]
    assert len(named(shared_batch, world.fifo, name)) == 2


def test_concurrent_retries_with_one_token_make_one_job(shared_batch: Any, world: World) -> None:
    token, name = str(uuid.uuid4()), unique("race")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda _: submit(shared_batch, world.fifo, name, clientToken=token), range(16))
        )
    assert len({a["jobId"] for a in answers}) == 1
    assert [j["jobId"] for j in named(shared_batch, world.fifo, name)] == [answers[0]["jobId"]]


def test_many_concurrent_submits_are_each_stored_once(shared_batch: Any, world: World) -> None:
    prefix = unique("bulk")
    names = [f"{prefix}-{i}" for i in range(40)]
    ids = submit_many(shared_batch, world.fifo, names)
    assert len(set(ids)) == 40
    listed = all_jobs(
        shared_batch, world.fifo, filters=[{"name": "JOB_NAME", "values": [prefix + "*"]}]
    )
    assert sorted(j["jobId"] for j in listed) == sorted(ids)
