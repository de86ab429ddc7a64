"""A few flows in a real browser: the pages link up, refresh themselves, tail logs, and act."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import chromium  # noqa: F401  (the fixture)
from tests.dashboard.helpers import status, submit
from tests.support.builders import fifo_queue
from tests.support.server import RunningServer, serve, settings_for, wait_for

# Generous: the machine is shared, and the pages poll every 2 s.
WAIT_MS = 20_000

TALKER = """
import sys, time
for i in range(1, 400):
    print(f"step {i}", flush=True)
    time.sleep(0.2)
"""


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:  # noqa: F811
    context = chromium.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[RunningServer]:
    with serve(settings_for(f"sqlite:///{tmp_path}/b.db", tmp_path / "data")) as running:
        yield running


def test_overview_queue_and_job_pages_link_up_and_the_blocker_changes_live(
    fake: RunningServer, page: Any
) -> None:
    batch = fake.client()
    fifo_queue(batch, "q", max_capacity=2)
    big = submit(batch, "big", instances=2)
    wait_for(lambda: status(batch, big) == "RUNNING")
    submit(batch, "head", instances=2)
    later = submit(batch, "later")
    wait_for(lambda: status(batch, later) == "RUNNABLE")

    page.goto(fake.url + "/")
    page.get_by_text("NUM_INSTANCES: 2 / 2").wait_for()
    page.locator("#queues").get_by_role("link", name="q", exact=True).click()
    page.wait_for_url("**/queues/q")
    page.locator("#front").get_by_role("link", name="later").click()
    page.wait_for_url(f"**/jobs/{later}")
    blocker = page.locator("#blocker")
    assert "Waiting behind head" in blocker.inner_text()

    batch.terminate_service_job(jobId=big, reason="make room")
    # No reload: the page refreshes itself and the head has left the queue.
    page.wait_for_function(
        "() => !document.querySelector('#blocker')"
        " || !document.querySelector('#blocker').innerText.includes('Waiting behind')"
    )
    assert page.url.endswith(f"/jobs/{later}")


@pytest.fixture
def local(tmp_path: Path) -> Iterator[RunningServer]:
    (tmp_path / "talk.py").write_text(TALKER)
    settings = settings_for(f"sqlite:///{tmp_path}/b.db", tmp_path / "data", backend="local")
    with serve(settings) as running:
        yield running


def _talking_payload(script: Path) -> str:
    return json.dumps(
        {
            "TrainingJobName": "talk",
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "AlgorithmSpecification": {
                "TrainingInputMode": "File",
                "ContainerEntrypoint": [sys.executable, str(script)],
            },
            "ResourceConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 1,
            },
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
    )


def test_a_running_local_jobs_log_grows_on_its_page(
    local: RunningServer, page: Any, tmp_path: Path
) -> None:
    batch = local.client()
    fifo_queue(batch, "q")
    job = batch.submit_service_job(
        jobName="talk",
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=_talking_payload(tmp_path / "talk.py"),
    )["jobId"]
    wait_for(lambda: status(batch, job) == "RUNNING", timeout=60)
    wait_for(lambda: b"step 2" in _log(local, job), timeout=60)
    page.goto(f"{local.url}/jobs/{job}")
    log = page.locator("#log-text-algo-1")
    log.get_by_text("step 1", exact=False).first.wait_for()
    seen = log.inner_text().count("step ")
    # Later lines arrive without a reload, appended after the ones already shown.
    page.wait_for_function(
        f"() => document.querySelector('#log-text-algo-1').innerText.split('step ').length > "
        f"{seen + 5}"
    )
    text = log.inner_text()
    assert text.index("step 1\n") < text.index(f"step {seen + 3}\n")
    batch.terminate_service_job(jobId=job, reason="enough")


def _log(server: RunningServer, job: str) -> bytes:
    import httpx

    return httpx.get(f"{server.url}/batchd/v1/jobs/{job}/logs").content


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RunningServer]:
    settings = settings_for(
        f"sqlite:///{tmp_path}/b.db", tmp_path / "data", access_keys={"AKIDDASH": "dash-secret"}
    )
    with serve(settings) as running:
        yield running


def test_sign_in_and_terminate_a_job(secured: RunningServer, page: Any) -> None:
    import boto3

    batch = boto3.client(
        "batch",
        endpoint_url=secured.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDDASH",
        aws_secret_access_key="dash-secret",
    )
    fifo_queue(batch, "q")
    job = submit(batch, "victim")
    wait_for(lambda: status(batch, job) == "RUNNING")

    page.goto(f"{secured.url}/jobs/{job}")
    page.wait_for_url("**/signin?next=*")
    page.get_by_label("Access key id").fill("AKIDDASH")
    page.get_by_label("Secret access key").fill("dash-secret")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/jobs/{job}")
    page.locator("#terminate input[name=reason]").fill("stopped in the browser")
    page.get_by_role("button", name="Terminate").click()
    page.locator(".status.s-failed").first.wait_for()
    assert "stopped in the browser" in page.locator("#status-reason").inner_text()
    assert status(batch, job) == "FAILED"
