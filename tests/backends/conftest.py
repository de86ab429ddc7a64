"""Fixtures for driving LocalBackend with real processes, real files and a real S3 endpoint."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tarfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from batchd.backends.base import LaunchSpec, Progress
from batchd.backends.local import LocalBackend
from tests.support.s3 import s3_endpoint

__all__ = ["s3_endpoint"]

PYTHON = sys.executable
POLL_SECONDS = 0.02
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def job_name(label: str = "job") -> str:
    """``AWSBatch<label><32 hex>`` as the runtime names training jobs."""
    return f"AWSBatch{label}{uuid.uuid4().hex}"


def python_job(
    code: str,
    *,
    output: str = "s3://results/out",
    **extra: Any,
) -> dict[str, Any]:
    """A CreateTrainingJob payload whose single program is ``python -c code``."""
    payload: dict[str, Any] = {
        "AlgorithmSpecification": {
            "ContainerEntrypoint": [PYTHON, "-c", code],
            "TrainingInputMode": "File",
        },
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    }
    payload.update(extra)
    return payload


def spec_for(payload: Mapping[str, Any], name: str | None = None) -> LaunchSpec:
    name = job_name() if name is None else name
    return LaunchSpec(
        job_id=str(uuid.uuid4()),
        job_arn="arn:aws:batch:us-east-1:123456789012:service-job/x",
        attempt_id=uuid.uuid4().hex,
        training_job_name=name,
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name.lower()}",
        payload=payload,
        tags={},
        region="us-east-1",
        account_id="123456789012",
    )


async def wait_until(
    backend: LocalBackend, name: str, done: Any, timeout: float = 20.0
) -> Progress:
    """Poll until ``done(progress)`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        [progress] = await backend.poll([name])
        if done(progress):
            return progress
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {progress.phase} after {timeout} s")
        await asyncio.sleep(POLL_SECONDS)


async def run_to_end(backend: LocalBackend, spec: LaunchSpec, timeout: float = 20.0) -> Progress:
    await backend.start(spec)
    return await wait_until(backend, spec.training_job_name, lambda p: p.phase.terminal, timeout)


async def wait_for_file(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        await asyncio.sleep(POLL_SECONDS)
    return path.read_text()


def live_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def assert_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """No live member at once; and ``killpg(pgid, 0)`` raises once init has reaped zombies."""
    assert live_members(pgid) == []
    deadline = time.monotonic() + timeout
    while group_exists(pgid):
        assert time.monotonic() < deadline, f"process group {pgid} still exists"
        await asyncio.sleep(0.05)


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def make_tarball(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def put_local(data_dir: Path, uri: str, content: bytes) -> None:
    """Write an object into the embedded store at ``<data_dir>/s3/<bucket>/<key>``."""
    path = data_dir / "s3" / uri.removeprefix("s3://")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def get_local(data_dir: Path, uri: str) -> bytes:
    return (data_dir / "s3" / uri.removeprefix("s3://")).read_bytes()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def new_backend(data_dir: Path, **options: Any) -> LocalBackend:
    return LocalBackend(data_dir, **{"stop_grace_seconds": 1.0, **options})


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for the standard chain (moto accepts any)."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def s3_client(s3_endpoint: str, s3_credentials: None) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name
