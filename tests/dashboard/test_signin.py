"""With SigV4 authentication on: nothing without signing in; the signed-in may act on jobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.helpers import HTML, status, submit, texts
from tests.support.builders import fifo_queue
from tests.support.server import RunningServer, serve, settings_for, wait_for

KEYS = {"AKIDDASH": "dash-secret"}


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    with serve(settings_for(db_url, tmp_path / "data", access_keys=KEYS)) as running:
        yield running


@pytest.fixture
def batch(secured: RunningServer) -> Any:
    import boto3

    return boto3.client(
        "batch",
        endpoint_url=secured.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDDASH",
        aws_secret_access_key="dash-secret",
    )


def browser(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HTML, timeout=30)


def signed_in(server: RunningServer) -> httpx.Client:
    client = browser(server)
    answer = client.post(
        "/signin", data={"access_key_id": "AKIDDASH", "secret_access_key": "dash-secret"}
    )
    assert answer.status_code == 303
    return client


@pytest.mark.parametrize("path", ["/", "/jobs", "/queues/q", "/jobs/some-id", "/jobs/x/log"])
def test_nothing_is_shown_before_signing_in(secured: RunningServer, path: str) -> None:
    answer = browser(secured).get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin?next=")
    assert answer.text == ""


@pytest.mark.parametrize(
    ("key", "secret"),
    [("AKIDDASH", "wrong"), ("AKIDNONE", "dash-secret"), ("", "")],
    ids=["wrong secret", "unknown key", "empty"],
)
def test_a_wrong_access_key_does_not_sign_in(secured: RunningServer, key: str, secret: str) -> None:
    client = browser(secured)
    answer = client.post("/signin", data={"access_key_id": key, "secret_access_key": secret})
    assert answer.status_code == 401
    assert "Unknown access key id or wrong secret" in answer.text
    assert client.get("/").status_code == 303


def test_a_forged_session_cookie_is_refused(secured: RunningServer) -> None:
    client = browser(secured)
    client.cookies.set("batchd_session", "AKIDDASH.99999999999." + "0" * 64)
    assert client.get("/").status_code == 303


def test_signing_in_shows_the_pages_and_the_actions(secured: RunningServer, batch: Any) -> None:
    fifo_queue(batch, "q")
    job = submit(batch, "victim")
    client = signed_in(secured)
    html = client.get(f"/jobs/{job}").text
    assert "signed in as <b>AKIDDASH</b>" in html
    assert 'id="terminate"' in html


def _token(html: str) -> str:
    found = re.search(r'name="token" value="([0-9a-f]+)"', html)
    assert found is not None
    return found[1]


def test_the_signed_in_terminate_a_job(secured: RunningServer, batch: Any) -> None:
    fifo_queue(batch, "q")
    job = submit(batch, "victim")
    wait_for(lambda: status(batch, job) == "RUNNING")
    client = signed_in(secured)
    token = _token(client.get(f"/jobs/{job}").text)
    answer = client.post(f"/jobs/{job}/terminate", data={"token": token, "reason": "by hand"})
    assert (answer.status_code, answer.headers["location"]) == (303, f"/jobs/{job}")
    wait_for(lambda: status(batch, job) == "FAILED")
    assert "by hand" in batch.describe_service_job(jobId=job)["statusReason"]


@pytest.mark.parametrize(
    ("priority", "code", "expected"),
    [("42", 303, 42), ("10000", 400, None), ("-1", 400, None), ("high", 400, None)],
)
def test_the_signed_in_change_a_jobs_priority(
    secured: RunningServer, batch: Any, priority: str, code: int, expected: int | None
) -> None:
    fifo_queue(batch, "q", max_capacity=1)
    submit(batch, "first")
    job = submit(batch, "waiting")
    client = signed_in(secured)
    token = _token(client.get(f"/jobs/{job}").text)
    answer = client.post(f"/jobs/{job}/priority", data={"token": token, "priority": priority})
    assert answer.status_code == code
    if code == 400:
        assert "priority must be a whole number" in answer.text
    assert batch.describe_service_job(jobId=job).get("schedulingPriority") == expected
    if expected is not None:
        assert texts(client.get(f"/jobs/{job}").text, "priority") == str(expected)


def test_an_action_without_the_forms_token_is_refused(secured: RunningServer, batch: Any) -> None:
    fifo_queue(batch, "q")
    job = submit(batch, "victim")
    client = signed_in(secured)
    answer = client.post(f"/jobs/{job}/terminate", data={"reason": "forged"})
    assert answer.status_code == 400
    assert "token" in answer.text
    assert status(batch, job) != "FAILED"


def test_signing_out_ends_the_session(secured: RunningServer) -> None:
    client = signed_in(secured)
    client.post("/signout")
    assert client.get("/").status_code == 303
