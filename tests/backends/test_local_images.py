"""Image-only requests: image_commands mappings, container runtimes, and what to configure."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import TrainingPhase
from batchd.backends.local.commands import Launcher, match_image
from batchd.backends.local.hostnames import loopback_address
from batchd.backends.local.payload import parse_request
from tests.backends.conftest import (
    PYTHON,
    get_local,
    new_backend,
    run_to_end,
    spec_for,
    tar_members,
)

IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.3-gpu-py311"
RECORD_ARGV = (
    "import json, os, sys; open(os.environ['SAGEMAKER_BASE_DIR'] + '/model/argv.json', 'w')"
    ".write(json.dumps(sys.argv[1:]))"
)


def _image_job(image: str, arguments: list[str] | None = None) -> dict[str, Any]:
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if arguments is not None:
        algorithm["ContainerArguments"] = arguments
    return {
        "AlgorithmSpecification": algorithm,
        "OutputDataConfig": {"S3OutputPath": "s3://results/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (IMAGE, ("exact",)),
        ("763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.1", ("long",)),
        ("763104351884.dkr.ecr.us-west-2.amazonaws.com/xgboost:1.7", ("short",)),
        ("docker.io/library/python:3.11", None),
    ],
)
def test_image_matches_exact_name_first_then_longest_prefix(
    image: str, expected: tuple[str, ...] | None
) -> None:
    commands = {
        IMAGE: ["exact"],
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/*": ["short"],
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:*": ["long"],
    }
    assert match_image(image, commands) == expected


def test_image_command_mapping_runs_the_mapped_argv_then_container_arguments(
    data_dir: Path,
) -> None:
    backend = new_backend(
        data_dir, image_commands={"763104351884.dkr.ecr.*": [PYTHON, "-c", RECORD_ARGV, "train"]}
    )
    spec = spec_for(_image_job(IMAGE, ["--epochs", "3"]))
    progress = asyncio.run(run_to_end(backend, spec))
    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert progress.model_artifacts is not None
    model = tar_members(get_local(data_dir, progress.model_artifacts))
    assert json.loads(model["argv.json"]) == ["train", "--epochs", "3"]


@pytest.mark.parametrize(
    ("runtime", "says"),
    [
        (None, "no container_runtime is configured"),
        ("/nonexistent/docker", "cannot run '/nonexistent/docker'"),
        pytest.param(
            "docker",
            "'docker info' failed",
            marks=pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client"),
        ),
    ],
    ids=["no-runtime", "runtime-missing", "runtime-without-engine"],
)
def test_unmapped_image_fails_with_a_reason_that_says_what_to_configure(
    data_dir: Path, runtime: str | None, says: str
) -> None:
    backend = new_backend(data_dir, container_runtime=runtime)
    progress = asyncio.run(run_to_end(backend, spec_for(_image_job("docker.io/acme/trainer:1"))))
    assert progress.phase is TrainingPhase.FAILED
    reason = progress.failure_reason or ""
    assert reason.startswith("ClientError: The local backend cannot run TrainingImage")
    assert says in reason
    for knob in ("ContainerEntrypoint", "image_commands", "container_runtime"):
        assert knob in reason


def test_container_runtime_command_mounts_the_host_tree_as_opt_ml(tmp_path: Path) -> None:
    # Only the argv is checked: this machine has a docker client but no engine.
    request = parse_request("AWSBatchjob" + "0" * 32, _image_job("acme/trainer:1"))
    launcher = Launcher(container_runtime="docker")
    base = tmp_path / "algo-1"
    env = launcher.environment(request, "algo-1", base, "arn:tj", "us-east-1", hosts_resolve=True)
    command = launcher.in_container(request, "algo-1", env, base)
    argv = list(command.argv)
    assert argv[:3] == ["docker", "run", "--rm"]
    assert argv[-2:] == ["acme/trainer:1", "train"]
    assert f"{base}:/opt/ml" in argv
    assert f"--add-host=algo-1:{loopback_address('algo-1')}" in argv
    assert "TRAINING_JOB_NAME" in argv  # passed by name, value from the client's environment
    assert command.env["TRAINING_JOB_NAME"] == request.name
    assert "SAGEMAKER_BASE_DIR" not in command.env
    assert command.cleanup == ("docker", "rm", "-f", f"{request.name}-algo-1")
