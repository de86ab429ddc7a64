"""The SageMaker Python SDK's TrainingQueue, unmodified, against a real batchd server.

The SDK builds its clients from the default boto3 session, so it is pointed at batchd with
``AWS_ENDPOINT_URL_BATCH`` / ``AWS_ENDPOINT_URL_SAGEMAKER`` in a child process (the variables
would otherwise leak into every other test's clients).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import CREDENTIALS, RunningServer, serve, settings_for

pytest.importorskip("sagemaker", reason="install the test extras: pip install -e '.[test]'")

TRAIN = """
import json, os, pathlib
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
hp = json.loads((base / "input/config/hyperparameters.json").read_text())
rows = (base / "input/data/train/rows.csv").read_text().splitlines()
(base / "model/model.txt").write_text(f"epochs={hp['epochs']} rows={len(rows)}")
"""

FLOW = """
import sys, boto3, sagemaker
from sagemaker.aws_batch import training_queued_job
from sagemaker.aws_batch.training_queue import TrainingQueue
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput

training_queued_job.POLL_IN_SECONDS = 0.2
estimator = Estimator(
    image_uri="local/sm-train:latest",
    role="arn:aws:iam::123456789012:role/SageMakerRole",
    instance_count=1, instance_type="ml.m5.large", output_path="s3://bucket/output",
    hyperparameters={"epochs": 3}, base_job_name="sdk",
    sagemaker_session=sagemaker.Session(boto3.Session(region_name="us-east-1")),
)
queue = TrainingQueue("sm-queue")
inputs = {"train": TrainingInput("s3://bucket/data/train")}
job = queue.submit(estimator, inputs, priority=5, tags={"team": "ml"})
result = job.result(timeout=60)
print("RESULT", result["status"], result["statusReason"])
print("LISTED", [j.job_name for j in queue.list_jobs(status="SUCCEEDED")] == [job.job_name])
print("FOUND", queue.get_job(job.job_name).job_arn == job.job_arn)
print("MODEL", job.get_estimator().model_data)
doomed = queue.submit(estimator, inputs, job_name="doomed")
doomed.terminate("changed my mind")
try:
    doomed.result(timeout=30)
except RuntimeError as err:
    print("TERMINATED", err)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    data = tmp_path / "data"
    (data / "s3" / "bucket" / "data" / "train").mkdir(parents=True)
    (data / "s3" / "bucket" / "data" / "train" / "rows.csv").write_text("1\n2\n")
    (tmp_path / "train.py").write_text(TRAIN)
    settings = settings_for(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        data,
        backend="local",
        image_commands={"local/sm-train:*": (sys.executable, str(tmp_path / "train.py"))},
    )
    with serve(settings) as running:
        batch = running.client()
        batch.create_service_environment(
            serviceEnvironmentName="env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}],
        )
        batch.create_job_queue(
            jobQueueName="sm-queue",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )
        yield running


def test_sdk_training_queue_submits_waits_lists_attaches_and_terminates(
    server: RunningServer,
) -> None:
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_BATCH": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
    }
    out = subprocess.run(
        [sys.executable, "-c", FLOW],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = {line.split(" ", 1)[0]: line for line in out.stdout.splitlines()}
    assert out.returncode == 0, out.stderr[-3000:]
    assert lines["RESULT"] == (
        "RESULT SUCCEEDED Received status from SageMaker: Training job completed"
    )
    assert lines["LISTED"] == "LISTED True"
    assert lines["FOUND"] == "FOUND True"
    assert lines["MODEL"].startswith("MODEL s3://bucket/output/AWSBatchsdk-")
    assert lines["MODEL"].endswith("/output/model.tar.gz")
    assert lines["TERMINATED"] == "TERMINATED changed my mind"
