"""The real sagemaker-training toolkit runs a user script under LocalBackend, unchanged."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import TrainingPhase
from tests.backends.conftest import (
    get_local,
    make_tarball,
    new_backend,
    put_local,
    run_to_end,
    spec_for,
    tar_members,
)

TRAIN = Path(sys.executable).parent / "train"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-training:latest"

# What a user writes for SageMaker: arguments from hyperparameters, data and model dirs from SM_*.
USER_SCRIPT = b"""
import argparse, json, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--model-name")
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
args = parser.parse_args()
rows = (pathlib.Path(args.train) / "data.csv").read_text().splitlines()
report = {
    "epochs": args.epochs,
    "model_name": args.model_name,
    "rows": len(rows),
    "sm_hp_epochs": os.environ["SM_HP_EPOCHS"],
    "hosts": json.loads(os.environ["SM_HOSTS"]),
    "current_host": os.environ["SM_CURRENT_HOST"],
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "job_name": os.environ["TRAINING_JOB_NAME"],
}
(pathlib.Path(args.model_dir) / "report.json").write_text(json.dumps(report))
"""


@pytest.mark.skipif(not TRAIN.exists(), reason="sagemaker-training is not installed")
@pytest.mark.parametrize("launch", ["entrypoint", "image-command"])
def test_toolkit_train_runs_a_user_script_from_the_submit_directory(
    data_dir: Path, launch: str
) -> None:
    # Given code uploaded as the SageMaker SDK does (sourcedir.tar.gz, JSON-encoded hyperparams)
    put_local(
        data_dir,
        "s3://sdk-bucket/job/source/sourcedir.tar.gz",
        make_tarball({"train.py": USER_SCRIPT}),
    )
    put_local(data_dir, "s3://sdk-bucket/data/train/data.csv", b"x,y\n1,2\n3,4\n")
    algorithm: dict[str, Any] = {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    options: dict[str, Any] = {}
    if launch == "entrypoint":
        algorithm["ContainerEntrypoint"] = [str(TRAIN)]
    else:
        options["image_commands"] = {"123456789012.dkr.ecr.us-east-1.amazonaws.com/*": [str(TRAIN)]}
    payload = {
        "AlgorithmSpecification": algorithm,
        "HyperParameters": {
            "epochs": "2",
            "model-name": '"tiny"',
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://sdk-bucket/job/source/sourcedir.tar.gz"',
            "sagemaker_region": '"us-east-1"',
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://sdk-bucket/data/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://sdk-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    spec = spec_for(payload)

    # When the toolkit's `train` runs it
    progress = asyncio.run(run_to_end(new_backend(data_dir, **options), spec, timeout=40))

    # Then the user script found its hyperparameters, channel and model dir, and exited 0
    log = (data_dir / "jobs" / spec.training_job_name / "logs" / "algo-1.log").read_text()
    assert progress.phase is TrainingPhase.COMPLETED, f"{progress.failure_reason}\n{log}"
    assert progress.model_artifacts is not None
    model = tar_members(get_local(data_dir, progress.model_artifacts))
    assert json.loads(model["report.json"]) == {
        "epochs": 2,
        "model_name": "tiny",
        "rows": 3,
        "sm_hp_epochs": "2",
        "hosts": ["algo-1"],
        "current_host": "algo-1",
        "channels": ["train"],
        "job_name": spec.training_job_name,
    }


@pytest.mark.skipif(not TRAIN.exists(), reason="sagemaker-training is not installed")
def test_toolkit_failure_file_becomes_the_failure_reason(data_dir: Path) -> None:
    put_local(
        data_dir,
        "s3://sdk-bucket/src/sourcedir.tar.gz",
        make_tarball({"train.py": b"import sys\nsys.exit(3)\n"}),
    )
    payload = {
        "AlgorithmSpecification": {
            "ContainerEntrypoint": [str(TRAIN)],
            "TrainingInputMode": "File",
        },
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://sdk-bucket/src/sourcedir.tar.gz"',
        },
        "OutputDataConfig": {"S3OutputPath": "s3://sdk-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec_for(payload), timeout=40))
    assert progress.phase is TrainingPhase.FAILED
    assert (progress.failure_reason or "").startswith("ExecuteUserScriptError:")
    assert "ExitCode 3" in (progress.failure_reason or "")
