"""The wire: AWS's error form, and malformed requests answered as ClientException, never 500.

Requests here are raw HTTP (``http.client``), so they can be what no SDK would send.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from batchd.operations.registry import HANDLERS
from batchd.protocol.model import batch_model
from tests.support.builders import parked_queue, rejected
from tests.support.server import RunningServer, payload

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def message(self) -> str:
        return str(self.body["message"])


def call(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    conn = http.client.HTTPConnection(server.url.split("://", 1)[1], timeout=30)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(
            method,
            path,
            body=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            encode_chunked=chunked,
        )
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def client_error(answer: Answer, *needles: str) -> None:
    """The answer is AWS's ClientException: 400, error-type header, JSON body, request id."""
    assert answer.status == 400, (answer.status, answer.raw)
    assert answer.headers["x-amzn-errortype"] == "ClientException"
    assert answer.headers["content-type"].startswith("application/json")
    assert UUID.match(answer.headers["x-amzn-requestid"])
    body = answer.body
    assert set(body) == {"__type", "message"}, body
    assert body["__type"] == "ClientException"
    for needle in needles:
        assert needle in body["message"], (needle, body["message"])


@pytest.fixture(scope="module")
def server(shared_server: RunningServer, shared_batch: Any) -> RunningServer:
    parked_queue(shared_batch, "q")
    return shared_server


def test_an_error_has_the_aws_status_headers_and_body(server: RunningServer) -> None:
    first = call(server, "POST", "/v1/describeservicejob", b'{"jobId": "missing"}')
    second = call(server, "POST", "/v1/describeservicejob", b'{"jobId": "missing"}')
    client_error(first, "missing")
    client_error(second)
    assert first.headers["x-amzn-requestid"] != second.headers["x-amzn-requestid"]


def test_a_success_has_a_request_id_and_an_empty_output_is_an_empty_object(
    server: RunningServer,
) -> None:
    ok = call(server, "POST", "/v1/describejobqueues", b"{}")
    assert ok.status == 200
    assert UUID.match(ok.headers["x-amzn-requestid"])
    assert "x-amzn-errortype" not in ok.headers
    assert [q["jobQueueName"] for q in ok.body["jobQueues"]] == ["q"]
    job = call(
        server,
        "POST",
        "/v1/submitservicejob",
        json.dumps(
            {
                "jobName": "wire",
                "jobQueue": "q",
                "serviceJobType": "SAGEMAKER_TRAINING",
                "serviceRequestPayload": payload(),
            }
        ).encode(),
    ).body
    described = call(server, "POST", "/v1/describeservicejob", json.dumps(job).encode()).body
    assert isinstance(described["createdAt"], int), "timestamps are integer epoch milliseconds"
    assert described["capacityUsage"] == [{"capacityUnit": "NUM_INSTANCES", "quantity": 1.0}]
    done = call(
        server,
        "POST",
        "/v1/terminateservicejob",
        json.dumps({"jobId": job["jobId"], "reason": "r"}).encode(),
    )
    assert (done.status, done.body) == (200, {})


def test_an_empty_body_means_no_members(server: RunningServer) -> None:
    assert call(server, "POST", "/v1/describeserviceenvironments", b"").status == 200
    client_error(call(server, "POST", "/v1/createjobqueue", b""), "jobQueueName", "priority")


JOB = {
    "jobName": "j",
    "jobQueue": "q",
    "serviceJobType": "SAGEMAKER_TRAINING",
    "serviceRequestPayload": "{}",
}


def _with(base: dict[str, Any], **change: Any) -> bytes:
    return json.dumps({**base, **change}).encode()


QUEUE = {"jobQueueName": "new", "priority": 1}


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/createjobqueue", b"{not json", "JSON"),
        ("/v1/createjobqueue", b'{"jobQueueName": "a\xff"}', "JSON"),
        ("/v1/createjobqueue", b"\xef\xbb\xbf{}", "JSON"),
        ("/v1/createjobqueue", b"[]", "JSON object"),
        ("/v1/createjobqueue", b'"a string"', "JSON object"),
        ("/v1/createjobqueue", b"null", "JSON object"),
        ("/v1/createjobqueue", b"12", "JSON object"),
        ("/v1/createjobqueue", b"[" * 100_000 + b"]" * 100_000, "JSON"),
        ("/v1/createjobqueue", b'{"a": ' * 30_000 + b"1" + b"}" * 30_000, "JSON"),
        ("/v1/createjobqueue", _with(QUEUE, jobQueueName=5), "jobQueueName"),
        ("/v1/createjobqueue", _with(QUEUE, jobQueueName=None), "jobQueueName"),
        ("/v1/createjobqueue", _with(QUEUE, priority="1"), "priority"),
        ("/v1/createjobqueue", _with(QUEUE, priority=True), "priority"),
        ("/v1/createjobqueue", _with(QUEUE, priority=1.5), "priority"),
        ("/v1/createjobqueue", _with(QUEUE, priority=2**40), "priority"),
        ("/v1/createjobqueue", _with(QUEUE, priority=10**30), "priority"),
        ("/v1/createjobqueue", b'{"jobQueueName": "n", "priority": NaN}', "priority"),
        ("/v1/createjobqueue", b'{"jobQueueName": "n", "priority": 1e400}', "priority"),
        ("/v1/createjobqueue", _with(QUEUE, tags=["a"]), "tags"),
        ("/v1/createjobqueue", _with(QUEUE, tags={"k": 1}), "tags"),
        ("/v1/createjobqueue", _with(QUEUE, serviceEnvironmentOrder={}), "serviceEnvironmentOrder"),
        (
            "/v1/createjobqueue",
            _with(QUEUE, serviceEnvironmentOrder=[1]),
            "serviceEnvironmentOrder",
        ),
        (
            "/v1/createjobqueue",
            _with(QUEUE, serviceEnvironmentOrder=[{"order": 1}]),
            "serviceEnvironment",
        ),
        ("/v1/createjobqueue", _with(QUEUE, state=["ENABLED"]), "state"),
        (
            "/v1/submitservicejob",
            _with(JOB, serviceRequestPayload={"a": 1}),
            "serviceRequestPayload",
        ),
        ("/v1/submitservicejob", _with(JOB, retryStrategy=3), "retryStrategy"),
        ("/v1/submitservicejob", _with(JOB, retryStrategy={"attempts": "3"}), "attempts"),
        ("/v1/submitservicejob", _with(JOB, retryStrategy={}), "attempts"),
        ("/v1/submitservicejob", _with(JOB, tags={}), "tags"),
        ("/v1/submitservicejob", _with(JOB, clientToken=""), "clientToken"),
        ("/v1/submitservicejob", _with(JOB, schedulingPriority=-(2**63) - 1), "schedulingPriority"),
        ("/v1/listservicejobs", b'{"jobQueue": "q", "filters": {"name": "JOB_NAME"}}', "filters"),
        (
            "/v1/listservicejobs",
            b'{"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": "x"}]}',
            "values",
        ),
        ("/v1/listservicejobs", b'{"jobQueue": "q", "maxResults": "10"}', "maxResults"),
        ("/v1/describejobqueues", b'{"jobQueues": "q"}', "jobQueues"),
        ("/v1/describejobqueues", b'{"jobQueues": [null]}', "jobQueues"),
        ("/v1/updateservicejob", b'{"jobId": ["a"], "schedulingPriority": 1}', "jobId"),
        # Text no database can store: NUL, and lone surrogates from JSON escapes.
        ("/v1/describeservicejob", b'{"jobId": "a\\u0000"}', "jobId"),
        ("/v1/describejobqueues", b'{"jobQueues": ["\\ud800"]}', "jobQueues"),
        ("/v1/submitservicejob", _with(JOB, clientToken="a\x00b"), "clientToken"),
        ("/v1/submitservicejob", _with(JOB, jobQueue="q\x00"), "jobQueue"),
        ("/v1/submitservicejob", _with(JOB, tags={"k": "\udfff"}), "tags"),
        (
            "/v1/listservicejobs",
            _with({"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["\ud800"]}]}),
            "values",
        ),
        # Times beyond a 64-bit integer cannot be compared in SQL.
        (
            "/v1/listservicejobs",
            _with(
                {"jobQueue": "q", "filters": [{"name": "BEFORE_CREATED_AT", "values": ["9" * 23]}]}
            ),
            "BEFORE_CREATED_AT",
        ),
        (
            "/v1/listservicejobs",
            _with(
                {"jobQueue": "q", "filters": [{"name": "AFTER_CREATED_AT", "values": [str(2**63)]}]}
            ),
            "AFTER_CREATED_AT",
        ),
        (
            "/v1/listservicejobs",
            _with(
                {"jobQueue": "q", "filters": [{"name": "AFTER_CREATED_AT", "values": ["\u00b2"]}]}
            ),
            "AFTER_CREATED_AT",
        ),
    ],
)
def test_a_malformed_body_is_a_client_exception(
    server: RunningServer, path: str, body: bytes, needle: str
) -> None:
    client_error(call(server, "POST", path, body), needle)
    queues = call(server, "POST", "/v1/describejobqueues", b"{}").body["jobQueues"]
    assert [q["jobQueueName"] for q in queues] == ["q"]


def _escaped_payload() -> str:
    # 10 KiB of control characters: a payload within its limit whose JSON escaping
    # (\u0001, six bytes each) makes the request body over 30 KiB.
    return "\u0001" * (10 * 1024 - 2)


def test_a_submit_body_over_30_kib_is_refused_with_or_without_a_length(
    server: RunningServer,
) -> None:
    body = _with(JOB, jobName="huge", serviceRequestPayload=_escaped_payload())
    assert len(body) > 30 * 1024
    client_error(call(server, "POST", "/v1/submitservicejob", body), "30720")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    client_error(call(server, "POST", "/v1/submitservicejob", chunks()), "30720")
    listed = call(
        server,
        "POST",
        "/v1/listservicejobs",
        b'{"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["huge"]}]}',
    )
    assert listed.body["jobSummaryList"] == []


def test_a_submit_body_of_exactly_30_kib_is_accepted(server: RunningServer) -> None:
    tags = {f"k{i:02d}": "v" * 256 for i in range(49)}

    def body(wide: int, shorter: int) -> bytes:
        # A 10 KiB payload; each "é" (two bytes, sent as six: \u00e9) in place of two "p"s
        # adds four bytes to the body and none to the payload.
        text = json.dumps({"p": "é" * wide + "p" * (10 * 1024 - 9 - 2 * wide)}, ensure_ascii=False)
        assert len(text.encode()) == 10 * 1024
        last = {"last": "v" * (256 - shorter)}
        return _with(JOB, jobName="big", serviceRequestPayload=text, tags={**tags, **last})

    missing = 30 * 1024 - len(body(0, 0))
    wide = -(-missing // 4)
    exact = body(wide, 4 * wide - missing)
    assert len(exact) == 30 * 1024
    assert call(server, "POST", "/v1/submitservicejob", exact).status == 200


def test_a_payload_over_10_kib_is_refused_naming_it(server: RunningServer) -> None:
    body = _with(JOB, serviceRequestPayload="p" * (10 * 1024 + 1))
    client_error(call(server, "POST", "/v1/submitservicejob", body), "serviceRequestPayload")


def test_any_other_body_over_its_limit_is_refused(server: RunningServer) -> None:
    body = _with({"jobQueues": ["q" * 1000] * 300})
    client_error(call(server, "POST", "/v1/describejobqueues", body), "limit")


@pytest.mark.parametrize(
    ("method", "path", "needle"),
    [
        ("POST", "/v1/nothing", "Unknown operation"),
        ("POST", "/v2/submitservicejob", "Unknown operation"),
        ("GET", "/", "Unknown operation"),
        ("POST", "/v1/tags", "Unknown operation"),
        ("GET", "/v1/createjobqueue", "GET"),
        ("DELETE", "/v1/submitservicejob", "DELETE"),
        (
            "PUT",
            "/v1/tags/" + quote("arn:aws:batch:us-east-1:123456789012:job-queue/q", safe=""),
            "PUT",
        ),
        ("PATCH", "/v1/describejobqueues", "PATCH"),
        ("OPTIONS", "/v1/describejobqueues", "OPTIONS"),
        ("GET", "/v1/tags/arn:aws:batch:us-east-1:123456789012:job-queue/q", "Unknown operation"),
        (
            "GET",
            "/v1/tags/arn%3Aaws%3Abatch%3Aus-east-1%3A123456789012%3Ajob-queue%2Fq%00",
            "resourceArn",
        ),
    ],
)
def test_an_unknown_path_or_wrong_method_is_a_client_exception(
    server: RunningServer, method: str, path: str, needle: str
) -> None:
    client_error(call(server, method, path, b"{}"), needle)


def test_a_head_request_is_refused_without_a_body(server: RunningServer) -> None:
    answer = call(server, "HEAD", "/v1/describejobqueues")
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "ClientException"


def test_an_operation_batchd_does_not_implement_is_refused_by_name(
    server: RunningServer, shared_batch: Any
) -> None:
    body = b'{"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}'
    client_error(call(server, "POST", "/v1/submitjob", body), "SubmitJob", "not supported")
    with rejected("SubmitJob", "not supported"):
        shared_batch.submit_job(jobName="j", jobQueue="q", jobDefinition="d")
    with rejected("DescribeComputeEnvironments"):
        shared_batch.describe_compute_environments()
    with rejected("RegisterJobDefinition"):
        shared_batch.register_job_definition(jobDefinitionName="d", type="container")


def test_tag_paths_take_the_percent_encoded_arn(server: RunningServer) -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/q"
    path = "/v1/tags/" + quote(arn, safe="")
    assert call(server, "POST", path, b'{"tags": {"team": "x"}}').status == 200
    assert call(server, "GET", path).body == {"tags": {"team": "x"}}
    untag = call(server, "DELETE", path + "?tagKeys=team&tagKeys=other")
    assert untag.status == 200
    assert call(server, "GET", path).body == {"tags": {}}
    client_error(call(server, "DELETE", path), "tagKeys")
    client_error(call(server, "POST", path, b"{}"), "tags")


def _wrong(shape: Any) -> Any:
    """A value of the wrong JSON type for a member of ``shape``."""
    return 7 if shape.type_name in ("string", "list", "map", "structure", "boolean") else "seven"


def test_no_implemented_operation_answers_500_to_wrongly_typed_members(
    server: RunningServer,
) -> None:
    model = batch_model()
    checked = 0
    for name in model.operation_names:
        if name not in HANDLERS:
            continue
        op = model.operation_model(name)
        if "{" in op.http["requestUri"]:
            continue  # tags: covered above
        shape = op.input_shape
        members = shape.members if shape is not None else {}
        bodies = [b"{}", json.dumps({m: _wrong(s) for m, s in members.items()}).encode()]
        bodies += [json.dumps({m: _wrong(s)}).encode() for m, s in members.items()]
        for body in bodies:
            answer = call(server, op.http["method"], op.http["requestUri"], body)
            assert answer.status in (200, 400), (name, body, answer.raw)
            checked += 1
    assert checked > 50


def test_unknown_members_are_ignored(server: RunningServer) -> None:
    answer = call(server, "POST", "/v1/describejobqueues", b'{"futureMember": [1, {"x": null}]}')
    assert answer.status == 200


def test_a_request_id_is_sent_even_for_a_body_that_cannot_be_read(
    server: RunningServer,
) -> None:
    answer = call(
        server,
        "POST",
        "/v1/describejobqueues",
        b"{}",
        headers={"Content-Length": str(300 * 1024)},
    )
    client_error(answer, "limit")
    assert uuid.UUID(answer.headers["x-amzn-requestid"])
