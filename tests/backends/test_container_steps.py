"""``batchd container stage`` and ``finish`` as a pod runs them: real processes, moto's S3 server.

What a pod stages must be what a local attempt of the same payload stages for the same host, so
the expectations here come from running the LocalBackend itself on that payload.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import batchd
from batchd import jsontext
from batchd.backends.base import TrainingPhase
from batchd.backends.kubernetes.container_env import DEV_TERMINATION_LOG
from batchd.backends.local.objectstore import ObjectStore
from batchd.backends.local.payload import parse_request
from tests.backends.conftest import (
    CREDENTIALS,
    job_name,
    make_tarball,
    new_backend,
    python_job,
    run_to_end,
    spec_for,
    tar_members,
)

SRC = Path(batchd.__file__).resolve().parents[1]
STEP_TIMEOUT = 60


def _channel(name: str, uri: str, **source: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, **source}},
    }


def _pod_env(
    payload: dict[str, Any], name: str, host: str, root: Path, endpoint: str, **extra: str
) -> dict[str, str]:
    """The environment POD_CONTRACT.md gives each container, plus the stand-in kubelet's
    SAGEMAKER_BASE_DIR; nothing of this process's AWS or batchd settings leaks in."""
    hosts = parse_request(name, payload).cluster.hosts
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "BATCHD_", "SM_", "SAGEMAKER_"))
    }
    return {
        **inherited,
        **CREDENTIALS,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "TRAINING_JOB_NAME": name,
        "TRAINING_JOB_ARN": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CURRENT_HOST": host,
        "SM_CURRENT_HOST": host,
        "SM_HOSTS": jsontext.dumps_text(list(hosts)),
        "BATCHD_HOSTS": ",".join(hosts),
        "BATCHD_INSTANCE_TYPE": "ml.m5.large",
        "BATCHD_TRAINING_REQUEST": jsontext.dumps_text(payload),
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "SAGEMAKER_BASE_DIR": str(root),
        **extra,
    }


def _step(step: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(env["SAGEMAKER_BASE_DIR"])
    root.mkdir(parents=True, exist_ok=True)  # the pod's volume exists before its containers
    return subprocess.run(
        [sys.executable, "-m", "batchd.cli", "container", step],
        check=False,
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file contents, None for a directory."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def _local_attempt(payload: dict[str, Any], name: str, data_dir: Path, endpoint: str) -> Any:
    backend = new_backend(data_dir, store=ObjectStore.s3(endpoint, "us-east-1"), hosts_file=None)
    progress = asyncio.run(run_to_end(backend, spec_for(payload, name)))
    return progress, backend.job_dir(name)


def test_stage_lays_out_each_host_as_a_local_attempt_does(
    tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    # Given a 2-host job with a replicated and a sharded channel and a submit directory in S3
    for key in ("data/train/a.csv", "data/train/sub/b.csv"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=f"content of {key}".encode())
    for n in range(5):
        s3_client.put_object(Bucket=bucket, Key=f"shards/part-{n}", Body=str(n).encode())
    source = make_tarball({"train.py": b"print('hi')\n", "lib/util.py": b"X = 1\n"})
    s3_client.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=source)
    payload = python_job(
        "pass",
        output=f"s3://{bucket}/results",
        HyperParameters={
            "epochs": "3",
            "name": "caf\u00e9 \u2615",
            "sagemaker_submit_directory": f'"s3://{bucket}/code/sourcedir.tar.gz"',
        },
        InputDataConfig=[
            _channel("train", f"s3://{bucket}/data/train/"),
            _channel("shards", f"s3://{bucket}/shards/", S3DataDistributionType="ShardedByS3Key"),
        ],
    )
    payload["ResourceConfig"]["InstanceCount"] = 2
    name = job_name("pod")
    progress, local = _local_attempt(payload, name, tmp_path / "data", s3_endpoint)
    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason

    for host in ("algo-1", "algo-2"):
        # When a pod of that host runs the stage step
        root = tmp_path / f"pod-{host}"
        done = _step("stage", _pod_env(payload, name, host, root, s3_endpoint))

        # Then its tree is the local host's, byte for byte, but for the network interface
        assert done.returncode == 0, done.stderr
        expected = _tree(local / host)
        resource = "input/config/resourceconfig.json"
        local_resource = expected[resource]
        assert local_resource is not None and b'"network_interface_name": "lo"' in local_resource
        expected[resource] = local_resource.replace(
            b'"network_interface_name": "lo"', b'"network_interface_name": "eth0"'
        )
        assert _tree(root) == expected
        assert jsontext.loads((root / resource).read_text())["current_host"] == host
        assert f"channel shards: {3 if host == 'algo-1' else 2} files" in done.stdout
    pods = [tmp_path / f"pod-{host}/input/data/shards" for host in ("algo-1", "algo-2")]
    assert sorted(path.name for pod in pods for path in pod.iterdir()) == [
        f"part-{n}" for n in range(5)
    ]


def test_a_missing_channel_object_fails_stage_with_the_local_backends_reason(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    payload = python_job(
        "pass",
        output=f"s3://{bucket}/results",
        InputDataConfig=[_channel("train", f"s3://{bucket}/nothing/here/")],
    )
    name = job_name("pod")
    progress, _ = _local_attempt(payload, name, tmp_path / "data", s3_endpoint)
    assert progress.phase is TrainingPhase.FAILED
    termination = tmp_path / "termination-log"
    env = _pod_env(
        payload,
        name,
        "algo-1",
        tmp_path / "pod",
        s3_endpoint,
        BATCHD_TERMINATION_LOG=str(termination),
    )

    done = _step("stage", env)

    assert done.returncode == 1
    assert progress.failure_reason is not None
    assert progress.failure_reason.startswith("ClientError: No S3 objects found under S3 URL")
    assert termination.read_text() == progress.failure_reason + "\n"
    assert progress.failure_reason in done.stderr


@pytest.mark.skipif(DEV_TERMINATION_LOG.exists(), reason="a kubelet's termination log is here")
def test_without_a_termination_log_the_reason_goes_to_output_failure(
    tmp_path: Path, s3_endpoint: str
) -> None:
    payload = python_job("pass", output="s3://no-such-bucket-here/results")
    root = tmp_path / "pod"
    env = _pod_env(payload, job_name("pod"), "algo-1", root, s3_endpoint, BATCHD_HOSTS="algo-7")

    done = _step("stage", env)

    assert done.returncode == 1
    reason = "InternalServerError: BATCHD_HOSTS 'algo-7' disagrees with the request's hosts algo-1"
    assert (root / "output/failure").read_text() == reason + "\n"
    assert reason in done.stderr


def test_finish_uploads_from_the_first_host_only(
    tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    # Given two pods whose training left a model and output data behind
    payload = python_job("pass", output=f"s3://{bucket}/results/")
    payload["ResourceConfig"]["InstanceCount"] = 2
    name = job_name("pod")
    for host in ("algo-1", "algo-2"):
        root = tmp_path / f"pod-{host}"
        assert _step("stage", _pod_env(payload, name, host, root, s3_endpoint)).returncode == 0
        # a training image running as another user than batchd's can still write its results
        assert (root / "model").stat().st_mode & 0o777 == 0o777
        (root / "model/nested").mkdir()
        (root / "model/weights.bin").write_bytes(f"weights of {host}".encode())
        (root / "model/nested/config.json").write_text("{}")
        (root / "output/data/metrics.csv").write_text(f"loss,{host}\n")

    # When algo-2 finishes, nothing is uploaded
    second = _step(
        "finish", _pod_env(payload, name, "algo-2", tmp_path / "pod-algo-2", s3_endpoint)
    )
    assert second.returncode == 0, second.stderr
    assert s3_client.list_objects_v2(Bucket=bucket).get("Contents", []) == []

    # When algo-1 finishes, its model and output data land where a local attempt puts them
    first = _step("finish", _pod_env(payload, name, "algo-1", tmp_path / "pod-algo-1", s3_endpoint))
    assert first.returncode == 0, first.stderr
    prefix = f"results/{name}/output"
    keys = sorted(item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"{prefix}/model.tar.gz", f"{prefix}/output.tar.gz"]
    model = s3_client.get_object(Bucket=bucket, Key=f"{prefix}/model.tar.gz")["Body"].read()
    assert tar_members(model) == {"weights.bin": b"weights of algo-1", "nested/config.json": b"{}"}
    data = s3_client.get_object(Bucket=bucket, Key=f"{prefix}/output.tar.gz")["Body"].read()
    assert tar_members(data) == {"metrics.csv": b"loss,algo-1\n"}
    assert f"s3://{bucket}/{prefix}/model.tar.gz" in first.stdout
    assert f"s3://{bucket}/{prefix}/output.tar.gz" in first.stdout
    assert not [path for path in (tmp_path / "pod-algo-1").iterdir() if path.name[0] == "."]


def test_an_upload_that_fails_fails_finish_with_the_local_backends_reason(
    tmp_path: Path, s3_endpoint: str
) -> None:
    payload = python_job("pass", output="s3://no-such-bucket-here/results")
    root = tmp_path / "pod"
    termination = tmp_path / "termination-log"
    env = _pod_env(
        payload,
        job_name("pod"),
        "algo-1",
        root,
        s3_endpoint,
        BATCHD_TERMINATION_LOG=str(termination),
    )
    assert _step("stage", env).returncode == 0

    done = _step("finish", env)

    assert done.returncode == 1
    reason = termination.read_text()
    assert reason.startswith("ClientError: Failed to upload model artifacts: ")
    assert "no-such-bucket-here" in reason and reason.count("\n") == 1
