"""Hostile input: every answer is an AWS-shaped 4xx, the server stays up, nothing changes.

Three generators run against one long-lived server per database:
- model-driven requests to every implemented operation, each broken on purpose by giving one
  member (at any depth) a value of the wrong JSON type, so none of them may succeed;
- raw garbage: odd methods, paths and bytes;
- forged paging tokens, out-of-range page sizes, and ARNs of other accounts and regions.
``BATCHD_FUZZ_EXAMPLES`` sets the cases per generator (default 300; raise it on demand).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchd.api import app as _app  # noqa: F401  (registers the handlers)
from batchd.operations.registry import HANDLERS
from batchd.protocol.model import batch_model
from tests.support.builders import all_jobs, parked_queue, queued
from tests.support.server import RunningServer

EXAMPLES = int(os.environ.get("BATCHD_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MODEL = batch_model()
OPERATIONS = sorted(name for name in MODEL.operation_names if name in HANDLERS)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
WRONG = {
    "string": st.one_of(
        st.integers(),
        st.booleans(),
        st.lists(st.text(), max_size=2),
        st.dictionaries(st.text(), st.text(), max_size=2),
    ),
    "integer": st.one_of(
        st.text(max_size=10),
        st.floats(allow_nan=False).filter(lambda f: not f.is_integer()),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    ),
    "long": st.one_of(st.text(max_size=10), st.booleans(), st.lists(st.integers(), max_size=2)),
    "double": st.one_of(st.text(max_size=10), st.booleans(), st.lists(st.integers(), max_size=2)),
    "float": st.one_of(
        st.text(max_size=10), st.booleans(), st.dictionaries(st.text(), st.integers(), max_size=2)
    ),
    "boolean": st.one_of(st.text(max_size=10), st.integers(), st.lists(st.booleans(), max_size=2)),
    "list": st.one_of(
        st.text(max_size=10), st.integers(), st.dictionaries(st.text(), st.text(), max_size=2)
    ),
    "map": st.one_of(st.text(max_size=10), st.integers(), st.lists(st.text(), max_size=2)),
    "structure": st.one_of(
        st.text(max_size=10), st.integers(), st.lists(st.integers(), max_size=2)
    ),
}


def body_members(shape: Shape) -> list[str]:
    return [n for n, m in shape.members.items() if m.serialization.get("location") is None]


@st.composite
def broken_body(draw: st.DrawFn, shape: Shape, depth: int = 0) -> dict[str, Any]:
    """A body with random plausible members and exactly one of them of the wrong type."""
    names = body_members(shape)
    body: dict[str, Any] = {}
    for name in names:
        if draw(st.booleans()):
            body[name] = draw(JSON_VALUES)
    target = draw(st.sampled_from(names))
    member = shape.members[target]
    nested = member.type_name == "structure" and depth < 2 and body_members(member)
    if nested and draw(st.booleans()):
        body[target] = draw(broken_body(member, depth + 1))
    elif (
        member.type_name == "list"
        and member.member.type_name == "structure"
        and depth < 2
        and draw(st.booleans())
    ):
        body[target] = [draw(broken_body(member.member, depth + 1))]
    else:
        body[target] = draw(WRONG[member.type_name])
    return body


@st.composite
def broken_request(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    op = MODEL.operation_model(draw(st.sampled_from(OPERATIONS)))
    method, uri = op.http["method"], op.http["requestUri"]
    arn = draw(st.sampled_from(["arn:aws:batch:us-east-1:123456789012:job-queue/nope", "x", "%00"]))
    path = uri.replace("{resourceArn}", quote(arn, safe=""))
    if not body_members(op.input_shape):
        return method, path + "?tagKeys=" + quote(draw(st.text(min_size=200, max_size=300))), {}
    return method, path, draw(broken_body(op.input_shape))


def snapshot(server: RunningServer) -> str:
    batch = server.client()
    state = {
        "environments": batch.describe_service_environments()["serviceEnvironments"],
        "queues": batch.describe_job_queues()["jobQueues"],
        "policies": batch.list_scheduling_policies()["schedulingPolicies"],
        "jobs": [
            batch.describe_service_job(jobId=j["jobId"])
            for j in all_jobs(batch, "fuzzed", filters=[{"name": "JOB_NAME", "values": ["*"]}])
        ],
    }
    for job in state["jobs"]:
        job.pop("ResponseMetadata", None)
    return json.dumps(state, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def target(shared_server: RunningServer) -> Any:
    batch = shared_server.client()
    parked_queue(batch, "fuzzed")
    for i in range(3):  # admitted (RUNNABLE) first: the only change left to see is the fuzzer's
        queued(batch, "fuzzed", name=f"keep{i}", tags={"n": str(i)})
    before = snapshot(shared_server)
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        yield http
    assert snapshot(shared_server) == before, "a rejected request changed stored state"
    assert batch.describe_job_queues(jobQueues=["fuzzed"])["jobQueues"], "the server is down"


def assert_aws_client_error(answer: httpx.Response) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.request.method != "HEAD":
        error = answer.json()
        assert error["__type"] and isinstance(error["message"], str)
        assert answer.headers["x-amzn-ErrorType"] == error["__type"]


@FUZZ
@given(request=broken_request())
def test_broken_members_are_refused_with_client_errors(
    target: httpx.Client, request: tuple[str, str, dict[str, Any]]
) -> None:
    method, path, body = request
    answer = target.request(method, path, content=json.dumps(body).encode())
    assert_aws_client_error(answer)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.one_of(
        st.sampled_from(["/v1/submitservicejob", "/v1/tags/", "/v1/", "/", "/v2/x", "//v1"]),
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(
            lambda p: "/" + quote(p, safe="/%")
        ),
    ),
    body=st.one_of(st.binary(max_size=2048), st.just(b"{" * 5000), st.just(b"\xff\xfe")),
)
def test_garbage_requests_are_refused_with_client_errors(
    target: httpx.Client, method: str, path: str, body: bytes
) -> None:
    if method == "POST" and path.rstrip("/") in ("", "/v1", "//v1"):
        path = "/v1/nothing"
    answer = target.request(method, path, content=body)
    assert_aws_client_error(answer)


@FUZZ
@given(
    op=st.sampled_from(
        [
            "ListServiceJobs",
            "DescribeJobQueues",
            "DescribeServiceEnvironments",
            "ListSchedulingPolicies",
        ]
    ),
    max_results=st.one_of(st.integers(-(2**40), 0), st.integers(101, 2**62)),
    token=st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=60).map(lambda b: b.hex())),
)
def test_page_sizes_and_forged_tokens_are_refused(
    target: httpx.Client, op: str, max_results: int, token: str | None
) -> None:
    body: dict[str, Any] = {"maxResults": max_results}
    if op == "ListServiceJobs":
        body["jobQueue"] = "fuzzed"
    if token is not None:
        body["nextToken"] = token
    answer = target.post(f"/v1/{op.lower()}", content=json.dumps(body).encode())
    assert_aws_client_error(answer)


@FUZZ
@given(
    account=st.from_regex(r"\A[0-9]{12}\Z").filter(lambda a: a != "123456789012"),
    region=st.sampled_from(["us-east-1", "eu-west-1", "ap-south-1"]),
    kind=st.sampled_from(["service-job/00000000-0000-4000-8000-000000000001", "job-queue/fuzzed"]),
)
def test_other_accounts_resources_are_unreachable(
    target: httpx.Client, account: str, region: str, kind: str
) -> None:
    arn = f"arn:aws:batch:{region}:{account}:{kind}"
    for method, path, body in [
        ("POST", "/v1/describeservicejob", {"jobId": arn}),
        ("POST", "/v1/terminateservicejob", {"jobId": arn, "reason": "x"}),
        ("POST", "/v1/listservicejobs", {"jobQueue": arn}),
        ("GET", f"/v1/tags/{quote(arn, safe='')}", {}),
        ("POST", f"/v1/tags/{quote(arn, safe='')}", {"tags": {"k": "v"}}),
    ]:
        answer = target.request(method, path, content=json.dumps(body).encode())
        assert_aws_client_error(answer)
