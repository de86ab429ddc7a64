"""Real training code run by the local backend, driven through the server with boto3."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import fifo_queue
from tests.support.server import RunningServer, serve, settings_for, wait_for

TRAIN = """
import json, os, pathlib, sys, time
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
hp = json.loads((base / "input/config/hyperparameters.json").read_text())
rows = (base / "input/data/train/rows.csv").read_text().splitlines()
print(f"training on {len(rows)} rows for {hp['epochs']} epochs", flush=True)
(base / "output/pid").write_text(str(os.getpid()))
if hp.get("mode") == "sleep":
    time.sleep(600)
if hp.get("mode") == "fail":
    (base / "output/failure").write_text("AlgorithmError: diverged at epoch 2")
    sys.exit(3)
(base / "model/weights.txt").write_text(f"rows={len(rows)} epochs={hp['epochs']}")
"""

TOOLKIT_SCRIPT = """
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "rows.csv")).read().splitlines()
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write(f"toolkit rows={len(rows)} epochs={args.epochs}")
"""


@pytest.fixture
def local(db_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    data = tmp_path / "data"
    bucket = data / "s3" / "bucket"
    (bucket / "data" / "train").mkdir(parents=True)
    (bucket / "data" / "train" / "rows.csv").write_text("1,2\n3,4\n5,6\n")
    (tmp_path / "train.py").write_text(TRAIN)
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w:gz") as tar:
        script = TOOLKIT_SCRIPT.encode()
        info = tarfile.TarInfo("train.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    (bucket / "code").mkdir()
    (bucket / "code" / "sourcedir.tar.gz").write_bytes(code.getvalue())
    toolkit = (sys.executable, "-m", "sagemaker_training.cli.train")
    settings = settings_for(
        db_url,
        data,
        backend="local",
        stop_grace_seconds=2.0,
        image_commands={"local/sm-train:*": toolkit},
    )
    with serve(settings) as running:
        fifo_queue(running.client(), "q", max_capacity=4)
        yield running


def training_payload(tmp: Path, name: str, **hyper: str) -> str:
    return json.dumps(
        {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "AlgorithmSpecification": {
                "TrainingInputMode": "File",
                "ContainerEntrypoint": [sys.executable, str(tmp / "train.py")],
            },
            "HyperParameters": {"epochs": "2", **hyper},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": "s3://bucket/data/train",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "ResourceConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 1,
            },
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
    )


def submit(server: RunningServer, body: str, **extra: Any) -> str:
    out = server.client().submit_service_job(
        jobName="train",
        jobQueue="q",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=body,
        **extra,
    )
    return str(out["jobId"])


def ended(server: RunningServer, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = server.client().describe_service_job(jobId=job_id)
    return job if job["status"] in ("SUCCEEDED", "FAILED") else None


def test_training_script_succeeds_with_its_model_artifact(
    local: RunningServer, tmp_path: Path
) -> None:
    job_id = submit(local, training_payload(tmp_path, "real"))
    job = wait_for(lambda: ended(local, job_id), timeout=60)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    name = job["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    artifact = tmp_path / "data" / "s3" / "bucket" / "output" / name / "output" / "model.tar.gz"
    with tarfile.open(artifact) as tar:
        member = tar.extractfile("weights.txt")
        assert member is not None and member.read() == b"rows=3 epochs=2"
    described = local.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://bucket/output/{name}/output/model.tar.gz"
    )
    logs = httpx.get(f"{local.url}/batchd/v1/jobs/{job_id}/logs")
    assert "training on 3 rows for 2 epochs" in logs.text
    for reference in (job_id, job["jobArn"]):  # an ARN travels with its slashes encoded
        cli = subprocess.run(
            [sys.executable, "-m", "batchd.cli", "logs", reference, "--endpoint-url", local.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "training on 3 rows for 2 epochs" in cli.stdout


def test_failure_file_becomes_the_status_reason_and_drives_retries(
    local: RunningServer, tmp_path: Path
) -> None:
    strategy = {
        "attempts": 3,
        "evaluateOnExit": [
            {
                "action": "RETRY",
                "onStatusReason": "Received status from SageMaker: AlgorithmError: *",
            },
        ],
    }
    job_id = submit(local, training_payload(tmp_path, "fails", mode="fail"), retryStrategy=strategy)
    job = wait_for(lambda: ended(local, job_id), timeout=90)
    assert job["status"] == "FAILED"
    assert (
        job["statusReason"] == "Received status from SageMaker: AlgorithmError: diverged at epoch 2"
    )
    assert len(job["attempts"]) == 3


def test_terminate_mid_run_leaves_no_process(local: RunningServer, tmp_path: Path) -> None:
    job_id = submit(local, training_payload(tmp_path, "sleeper", mode="sleep"))
    wait_for(lambda: local.client().describe_service_job(jobId=job_id)["status"] == "RUNNING", 60)
    job = local.client().describe_service_job(jobId=job_id)
    name = job["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    pid_file = wait_for(lambda: next((tmp_path / "data" / "jobs" / name).rglob("output/pid"), None))
    pid = int(pid_file.read_text())
    local.client().terminate_service_job(jobId=job["jobArn"], reason="enough")
    job = wait_for(lambda: ended(local, job_id), timeout=60)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == ("FAILED", "enough", True)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=10)


def test_sagemaker_toolkit_job_sent_as_an_image_runs_unchanged(
    local: RunningServer, tmp_path: Path
) -> None:
    body = json.loads(training_payload(tmp_path, "toolkit"))
    body["AlgorithmSpecification"] = {
        "TrainingImage": "local/sm-train:latest",
        "TrainingInputMode": "File",
    }
    body["HyperParameters"] = {
        "epochs": "4",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://bucket/code/sourcedir.tar.gz"',
    }
    started = time.monotonic()
    job_id = submit(local, json.dumps(body))
    job = wait_for(lambda: ended(local, job_id), timeout=120)
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), time.monotonic() - started)
    name = job["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
    artifact = tmp_path / "data" / "s3" / "bucket" / "output" / name / "output" / "model.tar.gz"
    with tarfile.open(artifact) as tar:
        member = tar.extractfile("model.txt")
        assert member is not None and member.read() == b"toolkit rows=3 epochs=4"
