"""Input channels staged from the embedded store, file:// and a real S3 endpoint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import Progress, TrainingPhase
from batchd.backends.local import LocalBackend
from batchd.backends.local.objectstore import ObjectStore
from tests.backends.conftest import (
    new_backend,
    put_local,
    python_job,
    run_to_end,
    spec_for,
    tar_members,
)


def _channel(name: str, uri: str, **source: str) -> dict[str, Any]:
    """A channel; ``ContentType`` goes to the channel, the rest to its S3DataSource."""
    channel: dict[str, Any] = {"ChannelName": name}
    if "ContentType" in source:
        channel["ContentType"] = source.pop("ContentType")
    channel["DataSource"] = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, **source}}
    return channel


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _run(
    backend: LocalBackend, payload: dict[str, Any], instances: int = 1
) -> tuple[Progress, Path]:
    payload["ResourceConfig"]["InstanceCount"] = instances
    spec = spec_for(payload)
    progress = asyncio.run(run_to_end(backend, spec))
    return progress, backend.job_dir(spec.training_job_name)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://datasets/mnist/train/", {"a.csv", "sub/b.csv"}),
        ("s3://datasets/mnist/train", {"a.csv", "sub/b.csv", "ing.csv"}),
        ("s3://datasets/mnist/train/a.csv", {"a.csv"}),
    ],
    ids=["folder-prefix", "bare-prefix", "single-object"],
)
def test_s3_prefix_channel_lands_relative_to_the_prefix_directory(
    data_dir: Path, uri: str, expected: set[str]
) -> None:
    for key in ("mnist/train/a.csv", "mnist/train/sub/b.csv", "mnist/training.csv"):
        put_local(data_dir, f"s3://datasets/{key}", key.encode())
    payload = python_job("pass", InputDataConfig=[_channel("train", uri, ContentType="text/csv")])

    progress, job_dir = _run(new_backend(data_dir), payload)

    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert set(_files(job_dir / "algo-1/input/data/train")) == expected
    config = json.loads((job_dir / "algo-1/input/config/inputdataconfig.json").read_text())
    assert config == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
    }


def test_sharded_channel_splits_objects_across_hosts_and_replicated_copies_them(
    data_dir: Path,
) -> None:
    for index in range(5):
        put_local(data_dir, f"s3://datasets/shards/part-{index}", str(index).encode())
    put_local(data_dir, "s3://datasets/vocab/vocab.txt", b"words")
    channels = [
        _channel("train", "s3://datasets/shards/", S3DataDistributionType="ShardedByS3Key"),
        _channel("vocab", "s3://datasets/vocab/"),
    ]

    progress, job_dir = _run(new_backend(data_dir), python_job("pass", InputDataConfig=channels), 2)

    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert set(_files(job_dir / "algo-1/input/data/train")) == {"part-0", "part-2", "part-4"}
    assert set(_files(job_dir / "algo-2/input/data/train")) == {"part-1", "part-3"}
    for host in ("algo-1", "algo-2"):
        assert _files(job_dir / host / "input/data/vocab") == {"vocab.txt": b"words"}


def test_manifest_channel_stages_the_listed_objects(data_dir: Path) -> None:
    put_local(data_dir, "s3://datasets/images/cat/1.jpg", b"cat")
    put_local(data_dir, "s3://datasets/images/dog/2.jpg", b"dog")
    put_local(data_dir, "s3://datasets/images/ignored.jpg", b"no")
    manifest = [{"prefix": "s3://datasets/images/"}, "cat/1.jpg", "dog/2.jpg"]
    put_local(data_dir, "s3://datasets/train.manifest", json.dumps(manifest).encode())
    channel = _channel("train", "s3://datasets/train.manifest", S3DataType="ManifestFile")

    progress, job_dir = _run(new_backend(data_dir), python_job("pass", InputDataConfig=[channel]))

    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert _files(job_dir / "algo-1/input/data/train") == {"cat/1.jpg": b"cat", "dog/2.jpg": b"dog"}


def test_file_uri_channel_reads_a_local_directory(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "local-data"
    (source / "nested").mkdir(parents=True)
    (source / "nested" / "x.txt").write_text("x")
    channel = _channel("train", f"file://{source}/")

    progress, job_dir = _run(new_backend(data_dir), python_job("pass", InputDataConfig=[channel]))

    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert _files(job_dir / "algo-1/input/data/train") == {"nested/x.txt": b"x"}


def test_empty_prefix_fails_the_attempt_with_a_client_error(data_dir: Path) -> None:
    channel = _channel("train", "s3://datasets/nothing-here/")
    progress, _ = _run(new_backend(data_dir), python_job("pass", InputDataConfig=[channel]))
    assert progress.phase is TrainingPhase.FAILED
    assert (progress.failure_reason or "").startswith("ClientError: No S3 objects found under")


def test_channels_and_artifacts_use_an_s3_endpoint(
    data_dir: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    # Given training data in a real S3-compatible endpoint (moto's server)
    s3_client.put_object(Bucket=bucket, Key="data/train/one.txt", Body=b"1")
    s3_client.put_object(Bucket=bucket, Key="data/train/deep/two.txt", Body=b"2")
    code = (
        "import os, shutil; b = os.environ['SAGEMAKER_BASE_DIR'];"
        "shutil.copytree(b + '/input/data/train', b + '/model/seen')"
    )
    payload = python_job(
        code,
        output=f"s3://{bucket}/results",
        InputDataConfig=[_channel("train", f"s3://{bucket}/data/train/")],
    )
    backend = new_backend(data_dir, store=ObjectStore.s3(s3_endpoint, "us-east-1"))

    # When the job runs against that store
    progress, job_dir = _run(backend, payload)

    # Then the program saw the objects and the model went back to the endpoint
    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    key = f"results/{job_dir.name}/output/model.tar.gz"
    assert progress.model_artifacts == f"s3://{bucket}/{key}"
    model = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert tar_members(model) == {"seen/one.txt": b"1", "seen/deep/two.txt": b"2"}
    assert not (data_dir / "s3").exists()
