"""From a request line to an operation: Batch's REST paths, SageMaker's X-Amz-Target, where
each member is read from, and which AWS error code each of our errors becomes."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from batchd import jsontext
from batchd.api import app as _app  # noqa: F401  (registers every operation)
from batchd.api.app import BatchApi
from batchd.api.requests import parse_params
from batchd.errors import (
    BatchdError,
    Conflict,
    InvalidParameter,
    LimitExceeded,
    NotFound,
    ServerError,
    Unsupported,
)
from batchd.operations.context import Context
from batchd.operations.registry import HANDLERS
from batchd.operations.sagemaker import SAGEMAKER
from batchd.protocol.errors import wire_error
from batchd.protocol.model import batch_model, router

ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/q"
ENCODED = ARN.replace(":", "%3A").replace("/", "%2F")


@pytest.mark.parametrize(
    ("method", "path", "operation", "labels"),
    [
        ("POST", "/v1/submitservicejob", "SubmitServiceJob", {}),
        ("POST", "/v1/submitservicejob/", "SubmitServiceJob", {}),
        ("POST", "/v1/describeservicejob", "DescribeServiceJob", {}),
        ("POST", "/v1/listservicejobs", "ListServiceJobs", {}),
        ("POST", "/v1/createserviceenvironment", "CreateServiceEnvironment", {}),
        ("POST", "/v1/getjobqueuesnapshot", "GetJobQueueSnapshot", {}),
        ("POST", "/v1/createjobqueue", "CreateJobQueue", {}),
        # tag paths carry the ARN, percent-encoded as botocore sends it, or not
        ("POST", f"/v1/tags/{ENCODED}", "TagResource", {"resourceArn": ARN}),
        ("GET", f"/v1/tags/{ENCODED}", "ListTagsForResource", {"resourceArn": ARN}),
        ("DELETE", f"/v1/tags/{ENCODED}", "UntagResource", {"resourceArn": ARN}),
        ("GET", "/v1/tags/plain", "ListTagsForResource", {"resourceArn": "plain"}),
        # operations batchd does not implement are still routed (and refused by name later)
        ("POST", "/v1/createcomputeenvironment", "CreateComputeEnvironment", {}),
    ],
)
def test_a_path_and_method_find_their_operation_and_labels(
    method: str, path: str, operation: str, labels: dict[str, str]
) -> None:
    found = router().match(method, path)
    assert found is not None
    op, read = found
    assert (op.name, read) == (operation, labels)


@pytest.mark.parametrize(
    ("method", "path", "exists"),
    [
        ("GET", "/v1/submitservicejob", True),  # wrong method, known path
        ("PUT", f"/v1/tags/{ENCODED}", True),
        ("POST", "/v1/SubmitServiceJob", False),  # paths are case-sensitive
        ("POST", "/v2/submitservicejob", False),
        ("POST", "/", False),
        ("POST", "/v1/tags/", False),
        ("POST", "/v1/submitservicejob/extra", False),
    ],
)
def test_nothing_is_found_for_other_paths_or_methods(method: str, path: str, exists: bool) -> None:
    assert router().match(method, path) is None
    assert router().path_exists(path) is exists


def test_every_batch_operation_is_routed() -> None:
    model = batch_model()
    for name in model.operation_names:
        op = model.operation_model(name)
        path = op.http["requestUri"].split("?")[0].replace("{resourceArn}", ENCODED)
        found = router().match(op.http["method"], path)
        assert found is not None and found[0].name == name


@pytest.mark.parametrize(
    ("operation", "labels", "query", "body", "params"),
    [
        ("SubmitServiceJob", {}, [], b'{"jobName": "j"}', {"jobName": "j"}),
        ("SubmitServiceJob", {}, [], b"", {}),
        ("SubmitServiceJob", {}, [], b"  \n", {}),
        (
            "TagResource",
            {"resourceArn": ARN},
            [],
            b'{"tags": {"a": "b"}}',
            {"resourceArn": ARN, "tags": {"a": "b"}},
        ),
        ("ListTagsForResource", {"resourceArn": ARN}, [], b"", {"resourceArn": ARN}),
        # query-string lists keep every value, in order
        (
            "UntagResource",
            {"resourceArn": ARN},
            [("tagKeys", "a"), ("other", "x"), ("tagKeys", "b")],
            b"",
            {"resourceArn": ARN, "tagKeys": ["a", "b"]},
        ),
        # a body on an operation whose members are all in the URI is ignored
        (
            "ListTagsForResource",
            {"resourceArn": ARN},
            [],
            b'{"resourceArn": "forged"}',
            {"resourceArn": ARN},
        ),
    ],
)
def test_members_are_read_from_where_the_model_puts_them(
    operation: str,
    labels: dict[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    params: dict[str, Any],
) -> None:
    op = batch_model().operation_model(operation)
    assert parse_params(op, labels, query, body) == params


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes, message: str) -> None:
    op = batch_model().operation_model("SubmitServiceJob")
    with pytest.raises(InvalidParameter, match=message):
        parse_params(op, {}, [], body)


# SageMaker's JSON 1.1 protocol names the operation in X-Amz-Target.
SAGEMAKER_TARGETS = ("DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob", "ListTags")


@pytest.mark.parametrize("name", SAGEMAKER_TARGETS)
def test_each_answered_sagemaker_target_has_a_handler(name: str) -> None:
    assert SAGEMAKER + name in HANDLERS


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "SageMaker.CreateTrainingJob"),
        ("POST", "SageMaker.DeleteModel"),
        ("POST", "SageMakerRuntime.DescribeTrainingJob"),
        ("POST", "DescribeTrainingJob"),
        ("POST", "SageMaker."),
        ("GET", "SageMaker.DescribeTrainingJob"),
    ],
)
def test_any_other_target_is_refused_before_anything_is_read(method: str, target: str) -> None:
    # No store, clock or runtime: refusing must not touch them.
    api = BatchApi(cast(Context, None))
    with pytest.raises(Unsupported, match="is not supported"):
        asyncio.run(api.sagemaker(method, target, b"{}"))


@pytest.mark.parametrize(
    ("error", "service", "status", "code"),
    [
        (InvalidParameter("x"), "batch", 400, "ClientException"),
        (NotFound("x"), "batch", 400, "ClientException"),
        (Conflict("x"), "batch", 400, "ClientException"),
        (LimitExceeded("x"), "batch", 400, "ClientException"),
        (Unsupported("x"), "batch", 400, "ClientException"),
        (ServerError("x"), "batch", 500, "ServerException"),
        (InvalidParameter("x"), "sagemaker", 400, "ValidationException"),
        (NotFound("x"), "sagemaker", 400, "ValidationException"),
        (ServerError("x"), "sagemaker", 500, "InternalFailure"),
    ],
)
def test_each_error_becomes_its_aws_status_and_code(
    error: BatchdError, service: str, status: int, code: str
) -> None:
    wire = wire_error(error, service)
    assert (wire.status, wire.code, wire.message) == (status, code, "x")
    assert jsontext.loads(wire.body()) == {"__type": code, "message": "x"}
