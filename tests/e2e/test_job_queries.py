"""DescribeServiceJob and ListServiceJobs: lookups, filters, order and paging (spec §3.2, §3.3).

Jobs sit in queues on DISABLED service environments, so they stay RUNNABLE.
"""

from __future__ import annotations

import base64
import json
import uuid
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
    unique,
)
from tests.support.server import RunningServer, wait_for
from tests.support.waiting import clock_passes

ACCOUNT = "arn:aws:batch:us-east-1:123456789012"
NAMES = ["Test1", "test1", "test10", "TEST2", "other", "test"]


@dataclass(frozen=True)
class Jobs:
    queue: str
    ids: dict[str, str]  # job name -> id
    created: dict[str, int]  # job name -> createdAt
    fair: str
    fair_ids: dict[str, list[str]]  # share identifier -> ids
    quota: str
    quota_ids: dict[str, list[str]]  # quota share name -> ids
    failed: str  # a terminated job of ``queue``


def runnable(batch: Any, queue: str) -> set[str]:
    return {j["jobId"] for j in all_jobs(batch, queue, jobStatus="RUNNABLE")}


@pytest.fixture(scope="module")
def jobs(shared_batch: Any) -> Jobs:
    queue = parked_queue(shared_batch, "listed")
    ids: dict[str, str] = {}
    created: dict[str, int] = {}
    for name in NAMES:
        ids[name] = submit(shared_batch, queue, name)["jobId"]
        created[name] = shared_batch.describe_service_job(jobId=ids[name])["createdAt"]
        clock_passes(created[name])  # distinct createdAt values
    failed = submit(shared_batch, queue, "ended")["jobId"]
    shared_batch.terminate_service_job(jobId=failed, reason="not needed")

    fair = fair_queue(shared_batch, "fair")
    fair_ids: dict[str, list[str]] = {"teamA": [], "teamB": []}
    for share in ("teamA", "teamB", "teamA"):
        fair_ids[share].append(submit(shared_batch, fair, shareIdentifier=share)["jobId"])
    quota = quota_queue(shared_batch, "quota")
    quota_ids: dict[str, list[str]] = {"red": [], "blue": []}
    for share in quota_ids:
        quota_share(shared_batch, quota, share)
    for share in ("red", "blue", "blue"):
        quota_ids[share].append(submit(shared_batch, quota, quotaShareName=share)["jobId"])

    wait_for(lambda: runnable(shared_batch, queue) == set(ids.values()))
    wait_for(lambda: len(runnable(shared_batch, fair)) == 3)
    wait_for(lambda: len(runnable(shared_batch, quota)) == 3)
    return Jobs(queue, ids, created, fair, fair_ids, quota, quota_ids, failed)


def listed(batch: Any, queue: str, **request: Any) -> list[str]:
    return [
        j["jobId"] for j in batch.list_service_jobs(jobQueue=queue, **request)["jobSummaryList"]
    ]


def by_name(batch: Any, queue: str, value: str) -> list[str]:
    return listed(batch, queue, filters=[{"name": "JOB_NAME", "values": [value]}])


def test_a_job_is_described_by_id_or_by_arn(shared_batch: Any, jobs: Jobs) -> None:
    job_id = jobs.ids["Test1"]
    by_id = shared_batch.describe_service_job(jobId=job_id)
    by_arn = shared_batch.describe_service_job(jobId=f"{ACCOUNT}:service-job/{job_id}")
    by_id.pop("ResponseMetadata")
    by_arn.pop("ResponseMetadata")
    assert by_id == by_arn
    assert by_id["jobName"] == "Test1"
    assert by_id["jobQueue"] == f"{ACCOUNT}:job-queue/{jobs.queue}"


@pytest.mark.parametrize(
    "job_id",
    [
        str(uuid.uuid4()),
        "not-a-uuid",
        "x" * 200,
        f"{ACCOUNT}:service-job/{uuid.uuid4()}",
        f"{ACCOUNT}:job-queue/listed",
        "arn:aws:batch:eu-west-1:123456789012:service-job/JOB",
        "arn:aws:batch:us-east-1:999999999999:service-job/JOB",
        f"{ACCOUNT}:job/JOB",
    ],
)
def test_an_unknown_job_is_a_client_exception(shared_batch: Any, jobs: Jobs, job_id: str) -> None:
    job_id = job_id.replace("JOB", jobs.ids["Test1"])
    with rejected("not found"):
        shared_batch.describe_service_job(jobId=job_id)


def test_a_summary_has_the_summary_members_only(shared_batch: Any, jobs: Jobs) -> None:
    [summary] = shared_batch.list_service_jobs(
        jobQueue=jobs.queue, filters=[{"name": "JOB_NAME", "values": ["other"]}]
    )["jobSummaryList"]
    assert summary["jobId"] == jobs.ids["other"]
    assert summary["jobArn"] == f"{ACCOUNT}:service-job/{jobs.ids['other']}"
    assert summary["jobName"] == "other"
    assert summary["serviceJobType"] == "SAGEMAKER_TRAINING"
    assert summary["status"] == "RUNNABLE"
    assert summary["createdAt"] == jobs.created["other"]
    assert summary["capacityUsage"] == [{"capacityUnit": "NUM_INSTANCES", "quantity": 1.0}]
    for absent in ("serviceRequestPayload", "tags", "attempts", "retryStrategy", "jobQueue"):
        assert absent not in summary


def test_a_queue_is_listed_by_name_or_by_arn(shared_batch: Any, jobs: Jobs) -> None:
    by_name_ = listed(shared_batch, jobs.queue, jobStatus="RUNNABLE")
    by_arn = listed(shared_batch, f"{ACCOUNT}:job-queue/{jobs.queue}", jobStatus="RUNNABLE")
    assert by_name_ == by_arn
    assert set(by_name_) == set(jobs.ids.values())


def test_without_status_or_filter_only_running_jobs_are_listed(
    shared_batch: Any, jobs: Jobs
) -> None:
    assert listed(shared_batch, jobs.queue) == []
    assert listed(shared_batch, jobs.queue, jobStatus="RUNNING") == []


def test_listing_by_status_returns_exactly_the_jobs_in_it(shared_batch: Any, jobs: Jobs) -> None:
    assert listed(shared_batch, jobs.queue, jobStatus="FAILED") == [jobs.failed]
    for status in ("SUBMITTED", "PENDING", "SCHEDULED", "SUCCEEDED"):
        assert listed(shared_batch, jobs.queue, jobStatus=status) == [], status


def test_jobs_are_listed_newest_first(shared_batch: Any, jobs: Jobs) -> None:
    expected = [jobs.ids[n] for n in reversed(NAMES)]
    assert listed(shared_batch, jobs.queue, jobStatus="RUNNABLE") == expected


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("test1", ["test1", "Test1"]),
        ("TEST1", ["test1", "Test1"]),
        ("test1*", ["test10", "test1", "Test1"]),
        ("TeSt*", ["test", "TEST2", "test10", "test1", "Test1"]),
        ("test", ["test"]),
        ("*", ["ended", "test", "other", "TEST2", "test10", "test1", "Test1"]),
        ("tes", []),
        ("test1?", []),
        ("%", []),
        ("_est1", []),
    ],
)
def test_the_job_name_filter_matches_exactly_or_by_prefix_ignoring_case_in_all_statuses(
    shared_batch: Any, jobs: Jobs, value: str, names: list[str]
) -> None:
    ids = {**jobs.ids, "ended": jobs.failed}
    assert by_name(shared_batch, jobs.queue, value) == [ids[n] for n in names]


def test_a_filter_other_than_a_share_ignores_the_status(shared_batch: Any, jobs: Jobs) -> None:
    found = listed(
        shared_batch,
        jobs.queue,
        jobStatus="RUNNING",
        filters=[{"name": "JOB_NAME", "values": ["ended"]}],
    )
    assert found == [jobs.failed]


def test_created_at_filters_are_strict_bounds(shared_batch: Any, jobs: Jobs) -> None:
    pivot = jobs.created["TEST2"]
    before = listed(
        shared_batch, jobs.queue, filters=[{"name": "BEFORE_CREATED_AT", "values": [str(pivot)]}]
    )
    assert before == [jobs.ids[n] for n in ("test10", "test1", "Test1")]
    after = listed(
        shared_batch, jobs.queue, filters=[{"name": "AFTER_CREATED_AT", "values": [str(pivot)]}]
    )
    assert after == [jobs.failed, jobs.ids["test"], jobs.ids["other"]]
    assert listed(
        shared_batch, jobs.queue, filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}]
    ) == [jobs.failed, *(jobs.ids[n] for n in reversed(NAMES))]


def test_share_filters_combine_with_the_status(shared_batch: Any, jobs: Jobs) -> None:
    share = [{"name": "SHARE_IDENTIFIER", "values": ["teamA"]}]
    assert listed(shared_batch, jobs.fair, filters=share) == []  # RUNNING by default
    found = listed(shared_batch, jobs.fair, jobStatus="RUNNABLE", filters=share)
    assert found == list(reversed(jobs.fair_ids["teamA"]))
    assert listed(shared_batch, jobs.fair, jobStatus="FAILED", filters=share) == []
    quota = [{"name": "QUOTA_SHARE_NAME", "values": ["blue"]}]
    assert listed(shared_batch, jobs.quota, filters=quota) == []
    found = listed(shared_batch, jobs.quota, jobStatus="RUNNABLE", filters=quota)
    assert found == list(reversed(jobs.quota_ids["blue"]))
    nobody = [{"name": "QUOTA_SHARE_NAME", "values": ["nobody"]}]
    assert listed(shared_batch, jobs.quota, jobStatus="RUNNABLE", filters=nobody) == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"filters": [{"name": "JOB_ID", "values": ["x"]}]}, "JOB_ID"),
        ({"filters": [{"name": "job_name", "values": ["x"]}]}, "job_name"),
        ({"filters": [{"name": "JOB_NAME", "values": []}]}, "values"),
        ({"filters": [{"name": "JOB_NAME", "values": ["a", "b"]}]}, "values"),
        ({"filters": [{"name": "JOB_NAME"}]}, "values"),
        ({"filters": [{"values": ["x"]}]}, "filters"),
        (
            {
                "filters": [
                    {"name": "JOB_NAME", "values": ["a"]},
                    {"name": "AFTER_CREATED_AT", "values": ["1"]},
                ]
            },
            "filters",
        ),
        ({"filters": [{"name": "BEFORE_CREATED_AT", "values": ["yesterday"]}]}, "BEFORE"),
        ({"filters": [{"name": "AFTER_CREATED_AT", "values": ["-5"]}]}, "AFTER"),
        ({"filters": [{"name": "AFTER_CREATED_AT", "values": ["1.5"]}]}, "AFTER"),
        ({"jobStatus": "DONE"}, "jobStatus"),
        ({"maxResults": 0}, "maxResults"),
        ({"maxResults": 101}, "maxResults"),
        ({"nextToken": "!!!"}, "nextToken"),
        ({"jobQueue": "missing"}, "missing"),
        ({"jobQueue": f"{ACCOUNT}:scheduling-policy/listed"}, "jobQueue"),
        ({"jobQueue": None}, "jobQueue"),
    ],
)
def test_an_invalid_listing_is_a_client_exception_naming_the_field(
    shared_batch: Any, jobs: Jobs, request_: dict[str, Any], field: str
) -> None:
    request = {"jobQueue": jobs.queue, **request_}
    if request["jobQueue"] is None:
        del request["jobQueue"]
    with rejected(field):
        shared_batch.list_service_jobs(**request)


def _decode(token: str) -> list[Any]:
    data: list[Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return data


def _encode(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_forged_and_foreign_tokens_are_refused(shared_batch: Any, jobs: Jobs) -> None:
    page = shared_batch.list_service_jobs(jobQueue=jobs.queue, jobStatus="RUNNABLE", maxResults=2)
    token = page["nextToken"]
    # The real token continues where the page ended.
    rest = listed(shared_batch, jobs.queue, jobStatus="RUNNABLE", nextToken=token)
    assert [j["jobId"] for j in page["jobSummaryList"]] + rest == listed(
        shared_batch, jobs.queue, jobStatus="RUNNABLE"
    )
    version, scope, cursor = _decode(token)
    forged = [
        _encode([version + 1, scope, cursor]),
        _encode([version, scope + "x", cursor]),
        _encode([version, scope, [str(cursor[0]), cursor[1]]]),
        _encode([version, scope, cursor[:1]]),
        _encode([version, scope, [10**30, cursor[1]]]),
        _encode([version, scope, [-(2**63) - 1, cursor[1]]]),
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),
        _encode({"v": version}),
        _encode("just a string"),
        token[:-3],
        token + "%%",
        "\u00e9t\u00e9",
    ]
    for bad in forged:
        with rejected("nextToken"):
            shared_batch.list_service_jobs(jobQueue=jobs.queue, jobStatus="RUNNABLE", nextToken=bad)
    foreign: list[dict[str, Any]] = [
        {"jobQueue": jobs.fair, "jobStatus": "RUNNABLE"},
        {"jobQueue": jobs.queue, "jobStatus": "FAILED"},
        {"jobQueue": jobs.queue, "filters": [{"name": "JOB_NAME", "values": ["test*"]}]},
    ]
    for request in foreign:
        with rejected("nextToken"):
            shared_batch.list_service_jobs(nextToken=token, **request)
    with rejected("nextToken"):
        shared_batch.describe_job_queues(nextToken=token)


def test_paging_through_250_jobs_misses_none_and_repeats_none_while_jobs_arrive(
    shared_server: RunningServer, shared_batch: Any
) -> None:
    queue = parked_queue(shared_batch, unique("paged"))
    bodies = [
        {
            "jobName": f"page-{i}",
            "jobQueue": queue,
            "serviceJobType": "SAGEMAKER_TRAINING",
            "serviceRequestPayload": "{}",
        }
        for i in range(250)
    ]
    originals = {a["jobId"] for a in post_many(shared_server.url, "/v1/submitservicejob", bodies)}
    first = shared_batch.list_service_jobs(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["page-*"]}]
    )
    assert len(first["jobSummaryList"]) == 100, "the default page holds 100 jobs"
    assert "nextToken" in first

    seen: list[dict[str, Any]] = []
    token = None
    pages = 0
    while True:
        request: dict[str, Any] = {
            "jobQueue": queue,
            "filters": [{"name": "JOB_NAME", "values": ["page-*"]}],
            "maxResults": 40,
        }
        if token:
            request["nextToken"] = token
        page = shared_batch.list_service_jobs(**request)
        assert len(page["jobSummaryList"]) <= 40
        seen.extend(page["jobSummaryList"])
        pages += 1
        # New jobs, matching the filter, arrive between pages.
        post_many(shared_server.url, "/v1/submitservicejob", bodies[:3])
        token = page.get("nextToken")
        if not token:
            break
    ids = [j["jobId"] for j in seen]
    assert len(ids) == len(set(ids)), "no job is listed twice"
    assert set(ids) == originals, "every job that existed at the first page is listed"
    assert pages == 7
    keys = [(j["createdAt"], j["jobId"]) for j in seen]
    assert keys == sorted(keys, reverse=True), "newest first, ties broken by jobId"


def test_paging_by_status_with_the_boto3_paginator_lists_each_job_once(
    shared_server: RunningServer, shared_batch: Any
) -> None:
    queue = parked_queue(shared_batch, unique("paged"))
    bodies = [
        {
            "jobName": f"job{i}",
            "jobQueue": queue,
            "serviceJobType": "SAGEMAKER_TRAINING",
            "serviceRequestPayload": "{}",
        }
        for i in range(105)
    ]
    ids = {a["jobId"] for a in post_many(shared_server.url, "/v1/submitservicejob", bodies)}
    wait_for(lambda: len(runnable(shared_batch, queue)) == 105)
    pages = list(
        shared_batch.get_paginator("list_service_jobs").paginate(
            jobQueue=queue, jobStatus="RUNNABLE", PaginationConfig={"PageSize": 50}
        )
    )
    assert [len(p["jobSummaryList"]) for p in pages] == [50, 50, 5]
    found = [j["jobId"] for p in pages for j in p["jobSummaryList"]]
    assert sorted(found) == sorted(ids)
    assert "nextToken" not in pages[-1]
