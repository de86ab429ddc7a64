"""The SageMaker SDK v2's log tail, unmodified, against batchd: ``estimator.logs()`` reads
CloudWatch Logs and DescribeTrainingJob's status story from the same endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.builders import fifo_queue
from tests.support.server import CREDENTIALS, RunningServer, serve, settings_for

pytest.importorskip("sagemaker", reason="install the test extras: pip install -e '.[test]'")

TRAIN = """
import json, os, pathlib
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
host = json.loads((base / "input/config/resourceconfig.json").read_text())["current_host"]
for epoch in range(3):
    print(f"{host} epoch {epoch} loss {1 / (epoch + 1):.3f}", flush=True)
(base / "model/model.txt").write_text("done")
"""

FLOW = """
import sys, boto3, sagemaker
from sagemaker.aws_batch import training_queued_job
from sagemaker.aws_batch.training_queue import TrainingQueue
from sagemaker.estimator import Estimator

training_queued_job.POLL_IN_SECONDS = 0.2
session = sagemaker.Session(boto3.Session(region_name="us-east-1"))
def estimator(count):
    return Estimator(
        image_uri="local/sm-train:latest",
        role="arn:aws:iam::123456789012:role/SageMakerRole",
        instance_count=count, instance_type="ml.m5.large", output_path="s3://bucket/output",
        base_job_name="tail", sagemaker_session=session,
    )
queue = TrainingQueue("sm-queue")
job = queue.submit(estimator(1), None)
job.result(timeout=60)
print("=== ONE HOST", flush=True)
job.get_estimator().logs()
two = queue.submit(estimator(2), None)
two.result(timeout=60)
name = two.describe()["latestAttempt"]["serviceResourceId"]["value"].rsplit("/", 1)[1]
print("=== TWO HOSTS", flush=True)
Estimator.attach(name, sagemaker_session=session).logs()
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    (tmp_path / "train.py").write_text(TRAIN)
    settings = settings_for(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path / "data",
        backend="local",
        image_commands={"local/sm-train:*": (sys.executable, str(tmp_path / "train.py"))},
    )
    with serve(settings) as running:
        fifo_queue(running.client(), "sm-queue", 4)
        yield running


def test_sdk_v2_logs_print_every_host_s_output_and_the_status_story(
    server: RunningServer,
) -> None:
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_BATCH": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": server.url,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", FLOW],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    one, two = out.stdout.split("=== TWO HOSTS")
    for epoch, loss in ((0, "1.000"), (2, "0.333")):
        assert f"algo-1 epoch {epoch} loss {loss}" in one
    assert "algo-2" not in one
    assert "Completed - Training job completed" in one
    assert "Training seconds:" in one and "Billable seconds:" in one
    for host in ("algo-1", "algo-2"):
        assert f"{host} epoch 2 loss 0.333" in two
    assert two.index("Starting - Preparing the instances") < two.index("Completed - Training")
