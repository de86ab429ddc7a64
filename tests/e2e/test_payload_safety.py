"""Nothing in a request escapes the job's directory or reads what is not its own.

The job's own code runs with the server's privileges, as a training container's code would
with the container's (run batchd as an unprivileged user). What these tests pin is that
batchd itself, staging inputs and packing outputs on the request's behalf, never reads or
writes outside what the request may name, and never hands request text to a shell.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builders import fifo_queue
from tests.support.server import RunningServer, serve, settings_for, wait_for


@pytest.fixture
def local(tmp_path: Path) -> Iterator[RunningServer]:
    data = tmp_path / "data"
    (data / "s3" / "bucket" / "in").mkdir(parents=True)
    (data / "s3" / "bucket" / "in" / "ok.csv").write_text("fine\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "public.csv").write_text("public\n")
    settings = settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}", data, backend="local")
    with serve(settings) as running:
        fifo_queue(running.client(), "q", max_capacity=4)
        yield running


SHOW = "import os,sys; print(sorted(os.listdir(os.environ['SAGEMAKER_BASE_DIR']+'/input/data')))"


def run(server: RunningServer, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "TrainingJobName": "safe",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AlgorithmSpecification": {
            "TrainingInputMode": "File",
            "ContainerEntrypoint": [sys.executable, "-c", SHOW],
        },
        "InputDataConfig": [_channel("train", "s3://bucket/in")],
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    }
    payload.update(changes)
    batch = server.client()
    job_id = batch.submit_service_job(
        jobName="safety",
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=json.dumps(payload),
    )["jobId"]

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = batch.describe_service_job(jobId=job_id)
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None

    result: dict[str, Any] = wait_for(ended, timeout=60)
    return result


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
    }


def test_a_plain_job_succeeds(local: RunningServer) -> None:
    assert run(local)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("InputDataConfig", [_channel("../escape", "s3://bucket/in")], "escape"),
        ("InputDataConfig", [_channel("train", "s3://bucket/../../../etc")], ".."),
        ("OutputDataConfig", {"S3OutputPath": "s3://bucket/../../escape"}, ".."),
    ],
)
def test_paths_that_climb_out_are_refused(
    local: RunningServer, field: str, value: Any, needle: str
) -> None:
    job = run(local, **{field: value})
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("Received status from SageMaker: ")
    assert needle in job["statusReason"]


def test_file_uris_cannot_reach_into_the_data_directory(
    local: RunningServer, tmp_path: Path
) -> None:
    ok = run(local, InputDataConfig=[_channel("train", f"file://{tmp_path}/outside")])
    assert ok["status"] == "SUCCEEDED"
    for inside in (f"{tmp_path}/data/jobs", f"{tmp_path}/data/s3/bucket", f"{tmp_path}/data"):
        job = run(local, InputDataConfig=[_channel("train", f"file://{inside}")])
        assert job["status"] == "FAILED"
        assert "data directory" in job["statusReason"]
    out = run(local, OutputDataConfig={"S3OutputPath": f"file://{tmp_path}/data/s3/bucket/x"})
    assert out["status"] == "FAILED"


def test_a_training_job_name_cannot_place_files_outside_the_jobs_directory(
    local: RunningServer, tmp_path: Path
) -> None:
    job = run(local, TrainingJobName="../../../../tmp/escape")
    assert job["status"] == "SUCCEEDED"
    name = job["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    assert "/" not in name and ".." not in name
    assert (tmp_path / "data" / "jobs" / name).is_dir()


def test_request_text_never_reaches_a_shell(local: RunningServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    argv = [sys.executable, "-c", "import sys; print(sys.argv[1:])", f"; touch {marker}"]
    job = run(
        local,
        AlgorithmSpecification={"TrainingInputMode": "File", "ContainerEntrypoint": argv},
        HyperParameters={"x": f"$(touch {marker})"},
        Environment={"X": f"`touch {marker}`"},
    )
    assert job["status"] == "SUCCEEDED"
    assert not marker.exists()
