"""SigV4 authentication: the matrix of good, missing, malformed, expired and wrong signatures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.server import RunningServer, serve, settings_for

KEYS = {"AKIDGOOD": "good-secret", "AKIDOTHER": "other-secret"}
BODY = b'{"jobId": "00000000-0000-4000-8000-000000000001"}'


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    with serve(settings_for(db_url, tmp_path / "data", access_keys=KEYS)) as running:
        yield running


def client(server: RunningServer, key: str, secret: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        "batch",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def signed(
    server: RunningServer,
    key: str = "AKIDGOOD",
    secret: str = "good-secret",
    when: dt.datetime | None = None,
    body: bytes = BODY,
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"{server.url}/v1/describeservicejob",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    auth = SigV4Auth(Credentials(key, secret), "batch", "us-east-1")
    if when is None:
        auth.add_auth(request)
        return request
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    request.headers["host"] = server.url.split("//", 1)[1]
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key}/{stamp[:8]}/us-east-1/batch/aws4_request, "
        f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}, Signature={signature}"
    )
    return request


def send(request: AWSRequest, body: bytes | None = None) -> httpx.Response:
    return httpx.post(
        request.url,
        content=body if body is not None else request.body,
        headers=dict(request.headers.items()),
    )


def test_correctly_signed_boto3_calls_work(secured: RunningServer) -> None:
    batch = client(secured, "AKIDGOOD", "good-secret")
    batch.create_service_environment(
        serviceEnvironmentName="env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
    )
    arn = batch.describe_service_environments()["serviceEnvironments"][0]["serviceEnvironmentArn"]
    batch.tag_resource(resourceArn=arn, tags={"k": "v"})  # a path with a percent-encoded ARN
    batch.untag_resource(resourceArn=arn, tagKeys=["k", "missing"])  # a repeated query string
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    assert client(secured, "AKIDOTHER", "other-secret").describe_service_environments()


@pytest.mark.parametrize(
    ("key", "secret", "region", "code"),
    [
        ("AKIDGOOD", "wrong-secret", "us-east-1", "InvalidSignatureException"),
        ("AKIDUNKNOWN", "good-secret", "us-east-1", "UnrecognizedClientException"),
        ("AKIDGOOD", "good-secret", "eu-west-1", "InvalidSignatureException"),
    ],
)
def test_bad_credentials_are_refused_with_aws_codes(
    secured: RunningServer, key: str, secret: str, region: str, code: str
) -> None:
    with pytest.raises(ClientError) as caught:
        client(secured, key, secret, region).describe_service_environments()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_refused(secured: RunningServer) -> None:
    answer = httpx.post(f"{secured.url}/v1/describeservicejob", content=BODY)
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"]) == (
        403,
        "MissingAuthenticationTokenException",
    )


def test_expired_signature_is_refused(secured: RunningServer) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    answer = send(signed(secured, when=old))
    assert answer.status_code == 403
    assert answer.json()["message"].startswith("Signature expired")


def test_fresh_explicit_timestamp_is_accepted(secured: RunningServer) -> None:
    answer = send(signed(secured, when=dt.datetime.now(dt.UTC)))
    assert answer.status_code == 400  # authenticated; the job simply does not exist
    assert answer.json()["__type"] == "ClientException"


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "malformed-header", "signed-headers", "date"],
)
def test_tampered_requests_are_refused(secured: RunningServer, tamper: str) -> None:
    request = signed(secured)
    body = None
    if tamper == "body":
        body = BODY.replace(b"0001", b"0002")
    elif tamper == "signature":
        auth = request.headers["Authorization"]
        request.headers["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    elif tamper == "malformed-header":
        request.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDGOOD"
    elif tamper == "signed-headers":
        auth = request.headers["Authorization"]
        request.headers["Authorization"] = auth.replace(
            "SignedHeaders=", "SignedHeaders=x-amz-date;"
        )
    elif tamper == "date":
        request.headers["X-Amz-Date"] = "20200101T000000Z"
    answer = send(request, body)
    assert answer.status_code in (400, 403), answer.text
    assert answer.json()["__type"] in (
        "InvalidSignatureException",
        "IncompleteSignatureException",
    )


def test_open_server_needs_no_signature(server: RunningServer) -> None:
    answer = httpx.post(f"{server.url}/v1/describeservicejob", content=BODY)
    assert answer.status_code == 400 and answer.json()["__type"] == "ClientException"
