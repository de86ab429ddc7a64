"""The bare ASGI application: lifespan, scopes it refuses, body limits, the logs route.

The first tests drive the app in-process with hand-made ASGI messages (no server, no store);
the last ones go through a real server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from batchd.api.app import BatchApi, BatchdApp, create_app
from batchd.backends.local.workspace import Workspace
from batchd.operations.context import Context
from tests.support.builders import fifo_queue, parked_queue
from tests.support.server import RunningServer, payload, wait_for

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

Message = MutableMapping[str, Any]


async def _never_started() -> tuple[Context, Callable[[], Awaitable[None]]]:
    raise AssertionError("not used")


def _started(ctx: Any = None) -> BatchdApp:
    """An app whose lifespan has "run", with ``ctx`` (any object) as its context."""
    app = create_app(_never_started)
    app.api = BatchApi(ctx)
    return app


def _drive(app: BatchdApp, scope: dict[str, Any], incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _http(
    method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers or [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }


def _body(*chunks: bytes) -> list[Message]:
    chunks = chunks or (b"",)
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


def _answer(sent: list[Message]) -> tuple[int, dict[bytes, bytes], bytes]:
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    headers = dict(sent[0]["headers"])
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    return sent[0]["status"], headers, sent[1]["body"]


def test_lifespan_opens_the_context_at_startup_and_closes_it_at_shutdown() -> None:
    closed: list[bool] = []

    async def factory() -> tuple[Context, Callable[[], Awaitable[None]]]:
        async def close() -> None:
            closed.append(True)

        return object(), close  # type: ignore[return-value]

    app = create_app(factory)
    sent = _drive(
        app, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed == [True]
    assert app.api is not None


def test_a_failed_startup_is_reported_with_its_error_and_raised() -> None:
    async def factory() -> tuple[Context, Callable[[], Awaitable[None]]]:
        raise OSError("database is unreachable")

    with pytest.raises(OSError, match="unreachable"):
        _drive(create_app(factory), {"type": "lifespan"}, [{"type": "lifespan.startup"}])


def test_a_failed_startup_sends_startup_failed_with_the_traceback() -> None:
    sent: list[Message] = []

    async def factory() -> tuple[Context, Callable[[], Awaitable[None]]]:
        raise OSError("database is unreachable")

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        with pytest.raises(OSError):
            await create_app(factory)({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "OSError: database is unreachable" in sent[0]["message"]


def test_a_websocket_is_refused_and_other_scopes_are_errors() -> None:
    sent = _drive(_started(), {"type": "websocket", "path": "/"}, [])
    assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]
    with pytest.raises(RuntimeError, match="HTTP only"):
        _drive(_started(), {"type": "telepathy"}, [])


def test_a_method_outside_http_verbs_is_405() -> None:
    status, headers, body = _answer(_drive(_started(), _http("TRACE", "/v1/x"), []))
    assert (status, body) == (405, b"Method Not Allowed")
    assert b"POST" in headers[b"allow"]
    status, headers, _ = _answer(_drive(_started(), _http("TRACE", "/batchd/v1/jobs/j/logs"), []))
    assert (status, headers[b"allow"]) == (405, b"GET, HEAD")


def test_a_body_is_read_across_messages_and_refused_past_the_limit() -> None:
    status, headers, body = _answer(
        _drive(_started(), _http("POST", "/v1/nothing"), _body(b'{"a"', b"", b": 1}"))
    )
    assert status == 400 and headers[b"x-amzn-errortype"] == b"ClientException"
    assert headers[b"content-type"] == b"application/json"
    assert UUID4.match(headers[b"x-amzn-requestid"].decode())
    assert json.loads(body)["message"] == "Unknown operation: POST /v1/nothing (with a body)"

    big = b"x" * (200 * 1024)
    status, _, body = _answer(
        _drive(_started(), _http("POST", "/v1/describejobqueues"), _body(big, big))
    )
    assert status == 400 and "exceeds the limit" in json.loads(body)["message"]

    declared = _http("POST", "/v1/describejobqueues", [(b"content-length", b"999999999")])
    status, _, body = _answer(_drive(_started(), declared, _body(b"{}")))
    assert json.loads(body)["message"].startswith("Request body of 999999999 bytes exceeds")


def test_a_client_that_goes_away_mid_body_gets_no_answer() -> None:
    incoming: list[Message] = [{"type": "http.request", "body": b"{", "more_body": True}]
    incoming.append({"type": "http.disconnect"})
    assert _drive(_started(), _http("POST", "/v1/describejobqueues"), incoming) == []


def test_a_bug_is_a_500_server_exception_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The context is a bare object: the handler's first use of it fails.
    sent = _drive(_started(object()), _http("POST", "/v1/describejobqueues"), _body(b"{}"))
    status, headers, body = _answer(sent)
    request_id = headers[b"x-amzn-requestid"].decode()
    assert (status, headers[b"x-amzn-errortype"]) == (500, b"ServerException")
    assert json.loads(body) == {
        "__type": "ServerException",
        "message": f"Internal error; request id {request_id}",
    }
    assert "internal error in request POST /v1/describejobqueues" in caplog.text
    unstarted = create_app(_never_started)
    status, _, _ = _answer(_drive(unstarted, _http("POST", "/v1/describejobqueues"), _body()))
    assert status == 500


def test_sagemaker_answers_in_json_1_1_with_its_error_codes() -> None:
    headers = [(b"x-amz-target", b"SageMaker.CreateTrainingJob")]
    status, answer_headers, body = _answer(
        _drive(_started(), _http("POST", "/", headers), _body(b"{}"))
    )
    assert status == 400
    assert answer_headers[b"content-type"] == b"application/x-amz-json-1.1"
    assert answer_headers[b"x-amzn-errortype"] == b"ValidationException"
    assert "SageMaker.CreateTrainingJob is not supported" in json.loads(body)["message"]


def test_request_ids_are_unique_uuid4_text() -> None:
    ids = set()
    for _ in range(200):
        sent = _drive(_started(), _http("POST", "/v1/nothing"), _body())
        request_id = _answer(sent)[1][b"x-amzn-requestid"].decode()
        assert UUID4.match(request_id), request_id
        ids.add(request_id)
    assert len(ids) == 200


# Through a real server.


@pytest.fixture(scope="module")
def server(shared_server: RunningServer, shared_batch: Any) -> RunningServer:
    parked_queue(shared_batch, "parked")
    fifo_queue(shared_batch, "running", max_capacity=5)
    return shared_server


def test_query_lists_and_percent_encoded_labels_reach_the_operation(
    server: RunningServer,
) -> None:
    batch = server.client()
    arn = batch.describe_job_queues(jobQueues=["parked"])["jobQueues"][0]["jobQueueArn"]
    batch.tag_resource(resourceArn=arn, tags={"a b": "1", "c": "2", "d": "3"})
    url = f"{server.url}/v1/tags/{quote(arn, safe='')}"
    answer = httpx.delete(url, params=[("tagKeys", "a b"), ("tagKeys", "c")])
    assert answer.status_code == 200, answer.text
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"d": "3"}


def test_logs_route_errors_are_aws_errors(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/batchd/v1/jobs/{quote('no such:job', safe='')}/logs")
    assert answer.status_code == 400
    assert answer.headers["x-amzn-errortype"] == "ClientException"
    assert answer.json()["message"] == "Service job no such:job not found"  # decoded
    job_id = server.client().submit_service_job(
        jobName="j",
        jobQueue="parked",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(),
    )["jobId"]
    answer = httpx.get(f"{server.url}/batchd/v1/jobs/{job_id}/logs", params={"offset": "-1"})
    assert answer.json()["message"] == "offset must be a non-negative integer, got '-1'"
    answer = httpx.get(f"{server.url}/batchd/v1/jobs/{job_id}/logs")
    assert "has not started a training job yet" in answer.json()["message"]
    answer = httpx.post(f"{server.url}/batchd/v1/jobs/{job_id}/logs")
    assert answer.json()["message"].startswith("Unknown operation: POST /batchd/v1/jobs/")


def test_logs_of_a_running_job_by_offset_and_host(server: RunningServer) -> None:
    batch = server.client()
    long_running = payload(environment={"BATCHD_FAKE_DURATION_SECONDS": "600"})
    job_id = batch.submit_service_job(
        jobName="logs",
        jobQueue="running",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=long_running,
    )["jobId"]
    job = wait_for(
        lambda: (j := batch.describe_service_job(jobId=job_id))["status"] == "RUNNING" and j
    )
    name = job["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    # The fake backend ran it and has no output, so the server asks its other backend, which
    # finds these files, as it would for an attempt of an earlier run.
    logs = Workspace.of(server.settings.data_dir, name).job_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "algo-1.log").write_bytes(b"first host\n")
    (logs / "algo-2.log").write_bytes(b"second host\n")
    url = f"{server.url}/batchd/v1/jobs/{job_id}/logs"

    one = httpx.get(url, params={"host": "algo-2", "offset": "7", "attempt": "1"})
    assert (one.status_code, one.content) == (200, b"host\n")
    assert one.headers["content-type"] == "text/plain; charset=utf-8"
    assert one.headers["x-batchd-next-offset"] == "12"
    assert one.headers["x-batchd-job-status"] == "RUNNING"
    both = httpx.get(url, params=[("host", "ignored"), ("host", "algo-1")])  # the last wins
    assert both.content == b"first host\n"
    every = httpx.get(url)
    assert every.content == b"==> algo-1 <==\nfirst host\n==> algo-2 <==\nsecond host\n"
    head = httpx.head(url, params={"host": "algo-1"})
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "11", b"")
    batch.terminate_service_job(jobId=job_id, reason="done")
