"""LocalBackend outcomes: exit codes, failure reasons, artifacts, phases and environment."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from batchd.backends.base import LaunchError, Progress, TrainingPhase
from tests.backends.conftest import (
    get_local,
    new_backend,
    python_job,
    run_to_end,
    spec_for,
    tar_members,
    wait_until,
)

WRITE_MODEL = """
import os, pathlib
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
(base / "model" / "weights.bin").write_bytes(b"\\x00\\x01weights")
(base / "model" / "sub").mkdir()
(base / "model" / "sub" / "config.json").write_text('{"layers": 2}')
(base / "output" / "data" / "metrics.csv").write_text("epoch,loss\\n1,0.5\\n")
print("trained")
"""


def test_successful_job_completes_and_uploads_model_and_output_archives(data_dir: Path) -> None:
    # Given a job whose program writes model files and output data
    spec = spec_for(python_job(WRITE_MODEL, output="s3://results/runs/"))
    name = spec.training_job_name

    async def scenario() -> Progress:
        backend = new_backend(data_dir)
        return await run_to_end(backend, spec)

    # When it runs to the end
    progress = asyncio.run(scenario())

    # Then it completed and model.tar.gz / output.tar.gz sit under <S3OutputPath>/<name>/output/
    model_uri = f"s3://results/runs/{name}/output/model.tar.gz"
    assert progress.phase is TrainingPhase.COMPLETED
    assert progress.failure_reason is None
    assert progress.model_artifacts == model_uri
    assert tar_members(get_local(data_dir, model_uri)) == {
        "weights.bin": b"\x00\x01weights",
        "sub/config.json": b'{"layers": 2}',
    }
    output_uri = f"s3://results/runs/{name}/output/output.tar.gz"
    assert tar_members(get_local(data_dir, output_uri)) == {"metrics.csv": b"epoch,loss\n1,0.5\n"}
    log = data_dir / "jobs" / name / "logs" / "algo-1.log"
    assert "trained" in log.read_text()


def test_uncompressed_model_is_uploaded_file_by_file(data_dir: Path) -> None:
    payload = python_job(WRITE_MODEL)
    payload["OutputDataConfig"]["CompressionType"] = "NONE"
    spec = spec_for(payload)
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))
    prefix = f"s3://results/out/{spec.training_job_name}/output/model/"
    assert progress.model_artifacts == prefix
    assert get_local(data_dir, prefix + "weights.bin") == b"\x00\x01weights"
    assert get_local(data_dir, prefix + "sub/config.json") == b'{"layers": 2}'


FAIL_WITH_FILE = """
import os, pathlib, sys
pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"], "output", "failure").write_text(sys.argv[1])
print("noise on stderr", file=sys.stderr)
sys.exit(2)
"""

FAIL_ON_STDERR = """
import sys
print("Traceback (most recent call last):", file=sys.stderr)
print("KeyError: 'learning_rate'", file=sys.stderr)
print("", file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.parametrize(
    ("code", "arguments", "reason"),
    [
        (FAIL_WITH_FILE, ["ValueError: bad input shape\n"], "ValueError: bad input shape"),
        (FAIL_WITH_FILE, ["x" * 1500], "x" * 1024),
        (FAIL_ON_STDERR, [], "AlgorithmError: KeyError: 'learning_rate', exit code: 3"),
        (
            "import os; os.kill(os.getpid(), 9)",
            [],
            "AlgorithmError: (no output on stderr), exit code: 137",
        ),
    ],
    ids=["failure-file", "failure-file-capped-at-1024", "last-stderr-line", "killed-by-signal"],
)
def test_failed_job_reports_failure_file_or_last_stderr_line(
    data_dir: Path, code: str, arguments: list[str], reason: str
) -> None:
    payload = python_job(code)
    payload["AlgorithmSpecification"]["ContainerArguments"] = arguments
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec_for(payload)))
    assert progress.phase is TrainingPhase.FAILED
    assert progress.failure_reason == reason
    assert progress.model_artifacts is None


ENV_DUMP = """
import json, os, pathlib, sys
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
(base / "model" / "env.json").write_text(json.dumps(dict(os.environ)))
(base / "model" / "cwd.txt").write_text(os.getcwd())
"""


def test_job_environment_is_the_contract_and_nothing_of_the_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a secret in the server's environment and a payload Environment
    monkeypatch.setenv("BATCHD_TEST_SERVER_SECRET", "do-not-leak")
    payload = python_job(
        ENV_DUMP,
        Environment={"MY_SETTING": "on", "TRAINING_JOB_NAME": "spoofed"},
        HyperParameters={"epochs": "2", "sagemaker_program": '"train.py"'},
    )
    spec = spec_for(payload)
    name = spec.training_job_name

    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))

    assert progress.phase is TrainingPhase.COMPLETED
    base = data_dir / "jobs" / name / "algo-1"
    env = json.loads((base / "model" / "env.json").read_text())
    assert env["SAGEMAKER_BASE_DIR"] == str(base)
    assert env["TRAINING_JOB_NAME"] == name
    assert env["TRAINING_JOB_ARN"] == spec.training_job_arn
    assert env["AWS_REGION"] == "us-east-1"
    assert env["CURRENT_HOST"] == "algo-1"
    assert env["MY_SETTING"] == "on"
    assert env["PATH"] == os.environ["PATH"]
    assert "BATCHD_TEST_SERVER_SECRET" not in env
    assert (base / "model" / "cwd.txt").read_text() == str(base / "code")
    config = base / "input" / "config"
    hyperparameters = json.loads((config / "hyperparameters.json").read_text())
    assert hyperparameters == {"epochs": "2", "sagemaker_program": '"train.py"'}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {}
    for sub in ("output/intermediate", "code", "checkpoints", "input/data"):
        assert (base / sub).is_dir()


def test_phases_go_pending_downloading_training_completed_with_a_wake_each(
    data_dir: Path,
) -> None:
    seen: list[TrainingPhase] = []
    spec = spec_for(python_job("import time; time.sleep(0.3)"))

    async def scenario() -> tuple[TrainingPhase, Progress]:
        backend = new_backend(data_dir, wake=lambda: seen.append(observe()))

        def observe() -> TrainingPhase:
            return backend.describe(spec.training_job_name).phase

        await backend.start(spec)
        [first] = await backend.poll([spec.training_job_name])
        end = await wait_until(backend, spec.training_job_name, lambda p: p.phase.terminal)
        return first.phase, end

    first, end = asyncio.run(scenario())
    assert first is TrainingPhase.PENDING
    assert end.phase is TrainingPhase.COMPLETED
    assert end.at_ms is not None
    assert seen == [TrainingPhase.DOWNLOADING, TrainingPhase.TRAINING, TrainingPhase.COMPLETED]


def test_unknown_job_is_lost_and_stop_of_unknown_job_is_a_no_op(data_dir: Path) -> None:
    async def scenario() -> Progress:
        backend = new_backend(data_dir)
        await backend.stop("AWSBatchnothing")
        [progress] = await backend.poll(["AWSBatchnothing"])
        return progress

    assert asyncio.run(scenario()).phase is TrainingPhase.LOST


def test_starting_the_same_training_job_name_twice_is_resource_in_use(data_dir: Path) -> None:
    spec = spec_for(python_job("pass"))

    async def scenario() -> None:
        backend = new_backend(data_dir)
        await run_to_end(backend, spec)
        await backend.start(spec)

    with pytest.raises(LaunchError) as raised:
        asyncio.run(scenario())
    assert raised.value.code == "ResourceInUse"


def test_missing_program_fails_to_spawn_with_a_client_error(data_dir: Path) -> None:
    payload = python_job("pass")
    payload["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/nonexistent/train"]
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec_for(payload)))
    assert progress.phase is TrainingPhase.FAILED
    assert progress.failure_reason is not None
    assert progress.failure_reason.startswith(
        "ClientError: cannot start '/nonexistent/train' on algo-1"
    )


def test_each_host_has_a_log_stream_read_by_offset(data_dir: Path) -> None:
    payload = python_job("print('hello')")
    payload["ResourceConfig"]["InstanceCount"] = 2
    spec = spec_for(payload)
    name = spec.training_job_name

    async def scenario() -> tuple[Sequence[str], list[bytes], bytes, Sequence[str]]:
        backend = new_backend(data_dir)
        await run_to_end(backend, spec)
        hosts = await backend.log_hosts(name)
        bodies = [await backend.read_log(name, host, 0, 1 << 20) for host in hosts]
        tail = await backend.read_log(name, "algo-1", 2, 3)
        # A new server run still finds the output of the earlier run's attempts.
        again = await new_backend(data_dir).log_hosts(name)
        return hosts, bodies, tail, again

    hosts, bodies, tail, again = asyncio.run(scenario())
    assert hosts == again == ["algo-1", "algo-2"]
    assert all(b"hello" in body for body in bodies)
    assert tail == bodies[0][2:5]


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("AWSBatchnever-ran", "algo-1"),  # a job this backend never ran
        ("..", "algo-1"),  # not a training job name
        (None, "algo-9"),  # a host the job does not have
        (None, "../algo-1"),  # not a host name
        (None, "algo-1/../../../../etc/passwd"),
    ],
)
def test_a_log_that_is_not_there_reads_as_empty(
    data_dir: Path, name: str | None, host: str
) -> None:
    spec = spec_for(python_job("print('hello')"))
    name = spec.training_job_name if name is None else name

    async def scenario() -> tuple[Sequence[str], bytes]:
        backend = new_backend(data_dir)
        await run_to_end(backend, spec)
        return await backend.log_hosts(name), await backend.read_log(name, host, 0, 100)

    hosts, body = asyncio.run(scenario())
    assert body == b""
    assert hosts == (["algo-1"] if name == spec.training_job_name else [])
