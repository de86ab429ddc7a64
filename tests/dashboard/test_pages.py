"""The dashboard's pages read as HTML from a real server backed by a real database."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.dashboard.helpers import page, row_ids, status, submit, texts
from tests.support.builders import (
    environment,
    fairshare_policy,
    fifo_queue,
    quota_policy,
    quota_share,
)
from tests.support.server import RunningServer, payload, wait_for

LONG = {"BATCHD_FAKE_DURATION_SECONDS": "600"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "media", "code"),
    [
        ("GET", "/", {"accept": "text/html"}, "text/html", 200),
        ("GET", "/", {}, "application/json", 400),
        (
            "GET",
            "/",
            {"accept": "text/html", "x-amz-target": "SageMaker.ListTrainingJobs"},
            "application/x-amz-json-1.1",
            400,
        ),
        ("GET", "/static/htmx.min.js", {}, "text/javascript", 200),
        ("GET", "/static/nothing.js", {}, "text/plain", 404),
        ("GET", "/v1/nothing", {"accept": "text/html"}, "application/json", 400),
    ],
    ids=["browser root", "api root", "sagemaker target", "htmx", "no such file", "api path"],
)
def test_browsers_get_the_dashboard_and_api_clients_the_api(
    server: RunningServer, method: str, path: str, headers: dict[str, str], media: str, code: int
) -> None:
    response = httpx.request(method, server.url + path, headers=headers)
    assert (response.status_code, response.headers["content-type"].split(";")[0]) == (
        code,
        media,
    )


def test_the_sagemaker_facade_still_answers_post_root(server: RunningServer) -> None:
    found = server.client("sagemaker").list_training_jobs()
    assert found["TrainingJobSummaries"] == []


@pytest.fixture
def busy(server: RunningServer, batch: Any) -> dict[str, str]:
    """A full environment: ``big`` runs on both instances, ``next`` and ``later`` wait."""
    fifo_queue(batch, "q", max_capacity=2)
    jobs = {"big": submit(batch, "big", instances=2)}
    wait_for(lambda: status(batch, jobs["big"]) == "RUNNING")
    jobs["next"] = submit(batch, "next", instances=2)
    jobs["later"] = submit(batch, "later")
    wait_for(lambda: status(batch, jobs["later"]) == "RUNNABLE")
    return jobs


def test_the_overview_shows_capacity_counts_and_the_oldest_waiting_job(
    server: RunningServer, busy: dict[str, str]
) -> None:
    html = page(server, "/").text
    assert "NUM_INSTANCES: 2 / 2 q 2 NUM_INSTANCES" in texts(html, "env-q-env")
    queue = texts(html, "queue-q")
    # SUBMITTED PENDING RUNNABLE SCHEDULED STARTING RUNNING SUCCEEDED FAILED, then oldest/longest
    assert queue.startswith("q ENABLED 0 0 2 0 0 1 0 0 next"), queue
    assert "big" in queue.split("next", 1)[1]


def test_the_queue_page_lists_the_front_in_dispatch_order(
    server: RunningServer, busy: dict[str, str]
) -> None:
    html = page(server, "/queues/q").text
    assert row_ids(html, "front-") == [busy["next"], busy["later"]]
    assert texts(html, f"front-{busy['next']}").startswith("1 next")
    assert "Head of the queue, next : No capacity: q-env has too little free" in texts(
        html, "head-blocker"
    )
    assert "None: blocked jobs wait indefinitely" in texts(html, "time-limits")


@pytest.mark.parametrize(
    ("job", "kind", "words"),
    [
        (
            "next",
            "capacity",
            "No capacity: q-env has too little free (2 of 2 NUM_INSTANCES in use)",
        ),
        ("later", "behind-blocked-head", "Waiting behind next"),
    ],
)
def test_a_waiting_job_page_names_its_blocker(
    server: RunningServer, busy: dict[str, str], job: str, kind: str, words: str
) -> None:
    html = page(server, f"/jobs/{busy[job]}").text
    assert f'data-kind="{kind}"' in html
    assert words in texts(html, "blocker")


def test_the_blocker_goes_once_capacity_frees(
    server: RunningServer, batch: Any, busy: dict[str, str]
) -> None:
    batch.terminate_service_job(jobId=busy["big"], reason="make room")
    wait_for(lambda: status(batch, busy["next"]) in ("SCHEDULED", "STARTING", "RUNNING"))
    html = page(server, f"/jobs/{busy['later']}").text
    assert "Waiting behind next" not in html
    assert "No capacity" in texts(html, "blocker")


def test_a_job_page_shows_attempts_payload_and_retry_strategy(
    server: RunningServer, busy: dict[str, str]
) -> None:
    html = page(server, f"/jobs/{busy['big']}").text
    assert "(in flight)" in texts(html, "attempts")
    assert "&#34;InstanceCount&#34;: 2" in html or '"InstanceCount": 2' in texts(html, "payload")
    assert "Retry strategy 1 attempt" in texts(html, "live")
    assert 'id="actions"' not in html  # read-only without authentication


def test_a_failed_job_shows_in_recent_failures_with_its_reason(
    server: RunningServer, batch: Any
) -> None:
    fifo_queue(batch, "q")
    job = submit(
        batch,
        "broken",
        BATCHD_FAKE_DURATION_SECONDS="0",
        BATCHD_FAKE_OUTCOME="Failed",
        BATCHD_FAKE_FAILURE_REASON="AlgorithmError: diverged",
    )
    wait_for(lambda: status(batch, job) == "FAILED")
    assert "AlgorithmError: diverged" in texts(page(server, "/").text, f"failure-{job}")


def test_the_jobs_list_pages_by_keyset_without_repeats_or_gaps(
    server: RunningServer, batch: Any
) -> None:
    fifo_queue(batch, "q", max_capacity=1)
    wanted = {submit(batch, f"job-{i:02d}") for i in range(55)}
    first = page(server, "/jobs?queue=q").text
    ids = row_ids(first, "job-")
    assert len(ids) == 50
    following = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = page(server, following.replace("&amp;", "&")).text
    assert 'id="next-page"' not in second
    ids += row_ids(second, "job-")
    assert len(ids) == len(set(ids)) and set(ids) == wanted


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=job-1", {"job-10", "job-11"}),
        ("name=JOB-0&status=RUNNING", {"job-00"}),
        ("name=job-0&status=RUNNING&status=SUCCEEDED", {"job-00"}),
        ("status=RUNNING", {"job-00"}),
        ("queue=q&name=nothing", set()),
        ("until=2000-01-01T00:00", set()),
    ],
)
def test_the_jobs_list_filters(
    server: RunningServer, batch: Any, query: str, expected: set[str]
) -> None:
    fifo_queue(batch, "q", max_capacity=1)
    ids = {submit(batch, f"job-{i:02d}"): f"job-{i:02d}" for i in range(12)}
    first = next(iter(ids))
    wait_for(lambda: status(batch, first) == "RUNNING")
    wait_for(lambda: all(status(batch, j) != "SUBMITTED" for j in list(ids)[-1:]))
    html = page(server, f"/jobs?{query}").text
    assert {ids[j] for j in row_ids(html, "job-")} == expected


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/jobs?status=LOST", 400, "status must be one of"),
        ("/jobs?cursor=zzz", 400, "cursor"),
        ("/jobs?since=yesterday", 400, "since must be a date"),
        ("/jobs?queue=nope", 400, "queue: job queue nope does not exist"),
        ("/jobs/00000000-0000-4000-8000-000000000000", 404, "not found"),
        ("/queues/nope", 404, "Job queue nope does not exist"),
    ],
)
def test_bad_input_gets_an_error_page_naming_the_field(
    server: RunningServer, path: str, code: int, words: str
) -> None:
    response = page(server, path)
    assert response.status_code == code
    assert words in response.text


def test_without_authentication_actions_are_refused(
    server: RunningServer, busy: dict[str, str]
) -> None:
    response = httpx.post(
        f"{server.url}/jobs/{busy['big']}/terminate", data={"reason": "no"}, headers={}
    )
    assert response.status_code == 403
    assert "read-only" in response.text


def test_a_fair_share_queue_shows_weights_holdings_and_decayed_usage(
    server: RunningServer, batch: Any
) -> None:
    environment(batch, "fair-env", state="ENABLED", limits=[(2, "NUM_INSTANCES")])
    policy = fairshare_policy(
        batch, "fair", shareDistribution=[{"shareIdentifier": "alice", "weightFactor": 0.5}]
    )
    batch.create_job_queue(
        jobQueueName="fq",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        schedulingPolicyArn=policy,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "fair-env"}],
    )
    job = batch.submit_service_job(
        jobName="a",
        jobQueue="fq",
        serviceJobType="SAGEMAKER_TRAINING",
        shareIdentifier="alice",
        serviceRequestPayload=payload(environment=LONG),
    )["jobId"]
    wait_for(lambda: status(batch, job) == "RUNNING")

    def alice() -> list[str]:
        cells = texts(page(server, "/queues/fq").text, "share-alice").split()
        return cells if float(cells[3].replace(",", "")) > 0 else []

    name, weight, held, _ = wait_for(alice)
    assert (name, weight, held) == ("alice", "0.5", "1")


def test_a_quota_share_queue_shows_limits_use_lending_and_borrowing(
    server: RunningServer, batch: Any
) -> None:
    environment(batch, "quota-env", state="ENABLED", limits=[(3, "ml.m5.large")])
    batch.create_job_queue(
        jobQueueName="tq",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        schedulingPolicyArn=quota_policy(batch, "tq-policy"),
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "quota-env"}],
    )
    quota_share(batch, "tq", "vision", limits=[(1, "ml.m5.large")], strategy="LEND_AND_BORROW")
    quota_share(batch, "tq", "speech", limits=[(2, "ml.m5.large")], strategy="LEND")
    jobs = [
        batch.submit_service_job(
            jobName=f"v{i}",
            jobQueue="tq",
            serviceJobType="SAGEMAKER_TRAINING",
            quotaShareName="vision",
            serviceRequestPayload=payload(environment=LONG),
        )["jobId"]
        for i in range(2)
    ]
    wait_for(lambda: all(status(batch, j) == "RUNNING" for j in jobs))
    html = page(server, "/queues/tq").text
    # share state unit limit used lent borrowed strategy borrow-limit
    assert texts(html, "quota-vision-ml.m5.large").split()[3:7] == ["1", "2", "0", "1"]
    assert texts(html, "quota-speech-ml.m5.large").split()[3:7] == ["2", "0", "1", "0"]


def test_refreshing_the_first_jobs_page_keeps_its_rows_as_new_jobs_arrive(
    server: RunningServer, batch: Any
) -> None:
    fifo_queue(batch, "q", max_capacity=1)
    old = [submit(batch, f"old-{i}") for i in range(3)]
    html = page(server, "/jobs?queue=q").text
    polled = re.search(r'id="live" hx-get="([^"]+)"', html)
    assert polled is not None and "anchor=" in polled[1]
    time.sleep(0.01)  # a later millisecond
    submit(batch, "new")
    refreshed = page(server, polled[1].replace("&amp;", "&")).text
    assert row_ids(refreshed, "job-") == row_ids(html, "job-") == old[::-1]
    assert 'id="first-page"' in refreshed  # a link to see the newer jobs


@pytest.mark.parametrize(
    ("query", "code", "words"),
    [
        ("host=algo-1&offset=x", 400, "offset must be a non-negative integer"),
        ("host=algo-1", 200, ""),
    ],
)
def test_a_log_fragment_checks_its_offset(
    server: RunningServer, busy: dict[str, str], query: str, code: int, words: str
) -> None:
    answer = page(server, f"/jobs/{busy['big']}/log?{query}")
    assert answer.status_code == code
    assert words in answer.text
