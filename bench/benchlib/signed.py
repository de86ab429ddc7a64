"""Requests signed once by botocore (SigV4), then replayed byte for byte.

batchd does not verify signatures yet and moto does not either, so one signed request can be
sent many times: without a client token, every SubmitServiceJob/SubmitJob replay is a new job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3

__all__ = ["TOKEN", "Signed", "batch_client", "capture", "training_payload"]

REGION = "us-east-1"
# Same length as a UUID: the load generator swaps in a fresh one per request.
TOKEN = "7e57c11e-0000-4000-8000-70ce70ce70ce"


def batch_client(endpoint: str, service: str = "batch") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


@dataclass(frozen=True)
class Signed:
    """One HTTP/1.1 request, ready to write to a keep-alive connection."""

    method: str
    path: str
    raw: bytes


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def _raise(request: Any, **_: Any) -> None:
    raise _Captured(request)


def capture(endpoint: str, call: Callable[[Any], Any], service: str = "batch") -> Signed:
    """Sign the request ``call(client)`` would send to ``endpoint``, without sending it."""
    client = batch_client(endpoint, service)
    client.meta.events.register(f"before-send.{service}", _raise)
    try:
        call(client)
    except _Captured as captured:
        request = captured.request
    else:
        raise RuntimeError("botocore sent no request")
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body: bytes = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    for name, value in request.headers.items():
        if name.lower() in ("host", "content-length"):
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        lines.append(f"{name}: {text}")
    lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return Signed(request.method, path, raw)


def training_payload(name: str = "bench", seconds: float = 3600.0, instances: int = 1) -> str:
    """A SageMaker CreateTrainingJob request; the fake backend 'runs' it for ``seconds``."""
    return json.dumps(
        {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "AlgorithmSpecification": {
                "TrainingImage": "bench/train:latest",
                "TrainingInputMode": "File",
            },
            "ResourceConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": instances,
                "VolumeSizeInGB": 1,
            },
            "OutputDataConfig": {"S3OutputPath": "s3://bench/output"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "Environment": {"BATCHD_FAKE_DURATION_SECONDS": str(seconds)},
        },
        separators=(",", ":"),
    )
