"""TagResource / UntagResource / ListTagsForResource on every kind of ARN (spec §1.5)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.builders import (
    environment,
    fairshare_policy,
    parked_queue,
    quota_queue,
    quota_share,
    rejected,
    submit,
    unique,
)
from tests.support.server import payload, wait_for

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"


@pytest.fixture(scope="module")
def qm_queue(shared_batch: Any) -> str:
    return quota_queue(shared_batch, "qm")


@pytest.fixture(scope="module")
def job_queue(shared_batch: Any) -> str:
    return parked_queue(shared_batch, "jobs")


def _environment(batch: Any, _: str, __: str) -> str:
    return environment(batch, unique("env"))


def _queue(batch: Any, _: str, __: str) -> str:
    name = parked_queue(batch, unique("q"))
    return f"{ACCOUNT}:job-queue/{name}"


def _policy(batch: Any, _: str, __: str) -> str:
    return fairshare_policy(batch, unique("policy"))


def _quota_share(batch: Any, qm: str, _: str) -> str:
    return quota_share(batch, qm, unique("share"))


def _job(batch: Any, _: str, queue: str) -> str:
    return str(submit(batch, queue)["jobArn"])


KINDS: dict[str, Callable[[Any, str, str], str]] = {
    "service-environment": _environment,
    "job-queue": _queue,
    "scheduling-policy": _policy,
    "quota-share": _quota_share,
    "service-job": _job,
}


@pytest.fixture(params=list(KINDS))
def arn(request: pytest.FixtureRequest, shared_batch: Any, qm_queue: str, job_queue: str) -> str:
    return KINDS[request.param](shared_batch, qm_queue, job_queue)


def tags_of(batch: Any, arn: str) -> dict[str, str]:
    found: dict[str, str] = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    return found


def described_tags(batch: Any, arn: str) -> dict[str, str]:
    """The tags the resource's own Describe shows."""
    name = arn.rsplit("/", 1)[-1]
    found: dict[str, str]
    if ":service-environment/" in arn:
        [env] = batch.describe_service_environments(serviceEnvironments=[arn])[
            "serviceEnvironments"
        ]
        found = env["tags"]
    elif "/quota-share/" in arn:
        found = batch.describe_quota_share(quotaShareArn=arn)["tags"]
    elif ":job-queue/" in arn:
        found = batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["tags"]
    elif ":scheduling-policy/" in arn:
        found = batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0]["tags"]
    else:
        found = batch.describe_service_job(jobId=arn)["tags"]
    return found


def test_tags_merge_overwrite_and_untag_on_every_kind_of_resource(
    shared_batch: Any, arn: str
) -> None:
    assert tags_of(shared_batch, arn) == {}
    out = shared_batch.tag_resource(resourceArn=arn, tags={"a": "1", "empty": ""})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(shared_batch, arn) == {"a": "1", "empty": ""}
    shared_batch.tag_resource(resourceArn=arn, tags={"a": "9", "b": "2"})
    assert tags_of(shared_batch, arn) == {"a": "9", "b": "2", "empty": ""}
    shared_batch.untag_resource(resourceArn=arn, tagKeys=["a", "never-set"])
    assert tags_of(shared_batch, arn) == {"b": "2", "empty": ""}
    assert described_tags(shared_batch, arn) == {"b": "2", "empty": ""}
    shared_batch.untag_resource(resourceArn=arn, tagKeys=["b", "empty"])
    assert tags_of(shared_batch, arn) == {}


def test_reserved_oversized_and_excess_tags_are_refused_and_change_nothing(
    shared_batch: Any, arn: str
) -> None:
    existing = {f"k{i}": "v" for i in range(49)}
    shared_batch.tag_resource(resourceArn=arn, tags=existing)
    for tags, field in (
        ({"aws:created-by": "me"}, "aws:"),
        ({"AWS:Team": "x", "fine": "y"}, "AWS:"),
        ({"new1": "x", "new2": "y"}, "50"),
        ({"k" * 129: "x"}, "tags"),
        ({"key": "v" * 257}, "tags"),
    ):
        with rejected(field):
            shared_batch.tag_resource(resourceArn=arn, tags=tags)
        assert tags_of(shared_batch, arn) == existing
    with rejected("tagKeys"):
        shared_batch.untag_resource(resourceArn=arn, tagKeys=[f"k{i}" for i in range(51)])
    shared_batch.tag_resource(resourceArn=arn, tags={"k0": "overwritten", "k49": "fiftieth"})
    assert len(tags_of(shared_batch, arn)) == 50


def test_a_terminated_job_can_still_be_tagged(shared_batch: Any, job_queue: str) -> None:
    job = submit(shared_batch, job_queue, tags={"before": "1"})
    shared_batch.terminate_service_job(jobId=job["jobId"], reason="done")
    shared_batch.tag_resource(resourceArn=job["jobArn"], tags={"after": "2"})
    assert tags_of(shared_batch, job["jobArn"]) == {"before": "1", "after": "2"}
    assert shared_batch.describe_service_job(jobId=job["jobId"])["status"] == "FAILED"


@pytest.mark.parametrize(
    "arn",
    [
        f"{ACCOUNT}:service-environment/missing",
        f"{ACCOUNT}:job-queue/missing",
        f"{ACCOUNT}:scheduling-policy/missing",
        f"{ACCOUNT}:job-queue/qm/quota-share/missing",
        f"{ACCOUNT}:job-queue/missing/quota-share/missing",
        f"{ACCOUNT}:service-job/{uuid.uuid4()}",
        f"{ACCOUNT}:job-definition/def:1",
        "arn:aws:batch:us-east-1:999999999999:job-queue/jobs",
        "arn:aws:batch:eu-west-1:123456789012:job-queue/jobs",
        "arn:aws:s3:::bucket",
        "not-an-arn",
        "arn:aws:batch:us-east-1:123456789012:job-queue/jobs/extra/parts",
    ],
)
def test_an_arn_of_no_resource_is_a_client_exception(
    shared_batch: Any, qm_queue: str, job_queue: str, arn: str
) -> None:
    with rejected(arn):
        shared_batch.tag_resource(resourceArn=arn, tags={"a": "b"})
    with rejected(arn):
        shared_batch.untag_resource(resourceArn=arn, tagKeys=["a"])
    with rejected(arn):
        shared_batch.list_tags_for_resource(resourceArn=arn)


def test_concurrent_tag_requests_lose_no_tag(shared_batch: Any, arn: str) -> None:
    keys = [f"key{i}" for i in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: shared_batch.tag_resource(resourceArn=arn, tags={k: k}), keys))
    assert tags_of(shared_batch, arn) == {k: k for k in keys}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: shared_batch.untag_resource(resourceArn=arn, tagKeys=[k]), keys))
    assert tags_of(shared_batch, arn) == {}


def test_tagging_while_the_resource_is_updated_loses_neither_change(shared_batch: Any) -> None:
    queue = parked_queue(shared_batch, unique("q"))
    arn = f"{ACCOUNT}:job-queue/{queue}"

    def tag(i: int) -> None:
        shared_batch.tag_resource(resourceArn=arn, tags={f"k{i}": "v"})

    def update(i: int) -> None:
        shared_batch.update_job_queue(jobQueue=queue, priority=i)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i in range(12):
            pool.submit(tag, i)
            pool.submit(update, 100 + i)
    [found] = shared_batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    assert found["tags"] == {f"k{i}": "v" for i in range(12)}
    assert 100 <= found["priority"] < 112


def test_an_unknown_backend_tag_is_refused_naming_the_valid_backends(shared_batch: Any) -> None:
    arn = environment(shared_batch, unique("env"))
    for value in ("nope", "", "Fake"):
        with rejected("batchd:backend", repr(value), "fake, local"):
            shared_batch.tag_resource(resourceArn=arn, tags={"batchd:backend": value, "a": "b"})
        assert tags_of(shared_batch, arn) == {}
    shared_batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "local"})
    assert tags_of(shared_batch, arn) == {"batchd:backend": "local"}


def test_the_backend_tag_means_nothing_on_other_resources_and_is_not_checked_there(
    shared_batch: Any, job_queue: str
) -> None:
    arn = f"{ACCOUNT}:job-queue/{job_queue}"
    shared_batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "anything"})
    assert tags_of(shared_batch, arn)["batchd:backend"] == "anything"


FAKE_REASON = "AlgorithmError: run by the fake backend"


def _run_once(batch: Any, name: str) -> str:
    """Submit a job both backends can run, and say which one ran it.

    The fake backend fails it with FAKE_REASON (its scripted outcome); the local backend runs
    the entry point, which succeeds.
    """
    body = json.loads(
        payload(
            name=name,
            environment={
                "BATCHD_FAKE_DURATION_SECONDS": "0",
                "BATCHD_FAKE_OUTCOME": "Failed",
                "BATCHD_FAKE_FAILURE_REASON": FAKE_REASON,
            },
        )
    )
    body["AlgorithmSpecification"] = {
        "TrainingInputMode": "File",
        "ContainerEntrypoint": [sys.executable, "-c", "pass"],
    }
    job_id = submit(batch, "retagged", name, serviceRequestPayload=json.dumps(body))["jobId"]
    job = wait_for(
        lambda: (
            (j := batch.describe_service_job(jobId=job_id))["status"] in ("SUCCEEDED", "FAILED")
            and j
        )
    )
    if job["status"] == "SUCCEEDED":
        return "local"
    assert FAKE_REASON in job["statusReason"], job
    return "fake"


def test_a_retagged_environment_dispatches_to_its_new_backend_without_a_restart(
    batch: Any,
) -> None:
    """The server's default backend is fake; the tag moves one environment back and forth."""
    arn = environment(batch, "retagged-env", state="ENABLED")
    batch.create_job_queue(
        jobQueueName="retagged",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": arn}],
    )
    assert _run_once(batch, "default") == "fake"
    batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "local"})
    assert _run_once(batch, "to-local") == "local"
    batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "fake"})
    assert _run_once(batch, "to-fake") == "fake"
    batch.tag_resource(resourceArn=arn, tags={"batchd:backend": "local"})
    assert _run_once(batch, "local-again") == "local"
    batch.untag_resource(resourceArn=arn, tagKeys=["batchd:backend"])
    assert _run_once(batch, "untagged") == "fake"
