"""A real batchd server (uvicorn in a thread) and real clients pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import uvicorn

from batchd.settings import Settings
from batchd.wiring import build_app

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class RunningServer:
    url: str
    settings: Settings
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def client(self, service: str = "batch") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real AWS CLI against this server."""
        env = {**os.environ, **CREDENTIALS, "AWS_PAGER": ""}
        cmd = [sys.executable, "-m", "awscli", *args, "--endpoint-url", self.url]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, check=check, timeout=60)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[RunningServer]:
    config = uvicorn.Config(
        build_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("batchd test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", settings, server, thread)
    try:
        yield running
    finally:
        running.stop()


def settings_for(db_url: str, data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "db_url": db_url,
        "backend": "fake",
        "tick_seconds": 0.05,
    }
    base.update(overrides)
    return Settings(**base)


def payload(
    instances: int = 1,
    instance_type: str = "ml.m5.large",
    name: str = "train",
    environment: dict[str, str] | None = None,
    **extra: Any,
) -> str:
    import json

    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": {
            "TrainingImage": "local/train:latest",
            "TrainingInputMode": "File",
        },
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instances,
            "VolumeSizeInGB": 1,
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    if environment:
        body["Environment"] = environment
    body.update(extra)
    return json.dumps(body)


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail loudly on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def statuses(client: Any, job_ids: Sequence[str]) -> list[str]:
    return [client.describe_service_job(jobId=j)["status"] for j in job_ids]
