"""Nothing from a request or its data can write outside the job's directory."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import LaunchError, TrainingPhase
from batchd.backends.local.objectstore import ObjectStore
from batchd.backends.local.sourcedir import UnsafeArchiveError, check_member
from tests.backends.conftest import (
    make_tarball,
    new_backend,
    put_local,
    python_job,
    run_to_end,
    spec_for,
)


@pytest.mark.parametrize(
    "name",
    ["../escape", "AWSBatch/../../etc", "a/b", "..", "", "x" * 64, "-leading-dash"],
)
def test_unsafe_training_job_names_are_rejected_at_start(data_dir: Path, name: str) -> None:
    with pytest.raises(LaunchError) as raised:
        asyncio.run(new_backend(data_dir).start(spec_for(python_job("pass"), name=name)))
    assert raised.value.code == "ValidationException"
    assert not (data_dir / "jobs").exists() or not any((data_dir / "jobs").iterdir())


@pytest.mark.parametrize("channel", ["..", ".", "a/b", "../../etc", "x" * 65, ""])
def test_unsafe_channel_names_are_rejected_at_start(data_dir: Path, channel: str) -> None:
    payload = python_job(
        "pass",
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}},
            }
        ],
    )
    with pytest.raises(LaunchError) as raised:
        asyncio.run(new_backend(data_dir).start(spec_for(payload)))
    assert raised.value.code == "ValidationException"


@pytest.mark.parametrize(
    "payload_change",
    [
        {"Environment": {"BAD-KEY": "x"}},
        {"OutputDataConfig": {}},
        {"AlgorithmSpecification": {"TrainingInputMode": "File"}},
        {"ResourceConfig": {"InstanceCount": 1000}},
    ],
    ids=["env-key", "no-output-path", "nothing-to-run", "too-many-hosts"],
)
def test_requests_that_cannot_run_are_refused_synchronously(
    data_dir: Path, payload_change: dict[str, Any]
) -> None:
    payload = python_job("pass", **payload_change)
    with pytest.raises(LaunchError):
        asyncio.run(new_backend(data_dir).start(spec_for(payload)))


def test_s3_key_with_dot_dot_fails_the_attempt_and_writes_nothing_outside(
    data_dir: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    # Given a bucket holding a key that, taken as a path, climbs out of the channel directory
    s3_client.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"ok")
    s3_client.put_object(Bucket=bucket, Key="data/../../../../escaped.txt", Body=b"evil")
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/"}},
    }
    backend = new_backend(data_dir, store=ObjectStore.s3(s3_endpoint, "us-east-1"))
    spec = spec_for(python_job("pass", InputDataConfig=[channel]))

    progress = asyncio.run(run_to_end(backend, spec))

    assert progress.phase is TrainingPhase.FAILED
    assert "unsafe object key" in (progress.failure_reason or "")
    assert not any(path.name == "escaped.txt" for path in data_dir.parent.rglob("*"))


def test_manifest_entry_with_dot_dot_fails_the_attempt(data_dir: Path) -> None:
    manifest = b'[{"prefix": "s3://datasets/images/"}, "../secret"]'
    put_local(data_dir, "s3://datasets/secret", b"no")
    put_local(data_dir, "s3://datasets/m.manifest", manifest)
    channel = {
        "ChannelName": "train",
        "DataSource": {
            "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://datasets/m.manifest"}
        },
    }
    spec = spec_for(python_job("pass", InputDataConfig=[channel]))
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))
    assert progress.phase is TrainingPhase.FAILED
    assert "unsafe object key" in (progress.failure_reason or "")


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.py"),
        _member("code/../../escape.py"),
        _member("/etc/cron.d/evil"),
        _member("link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("sub/link", tarfile.SYMTYPE, "../../outside"),
        _member("hard", tarfile.LNKTYPE, "../outside"),
        _member("dev", tarfile.CHRTYPE),
        _member("fifo", tarfile.FIFOTYPE),
    ],
    ids=lambda member: f"{member.name}->{member.linkname}",
)
def test_unsafe_tar_members_are_rejected(member: tarfile.TarInfo) -> None:
    with pytest.raises(UnsafeArchiveError):
        check_member(member)


@pytest.mark.parametrize(
    "member",
    [_member("train.py"), _member("pkg/mod.py"), _member("pkg/link", tarfile.SYMTYPE, "mod.py")],
)
def test_safe_tar_members_pass(member: tarfile.TarInfo) -> None:
    check_member(member)


def test_source_archive_with_an_escaping_member_fails_the_attempt(data_dir: Path) -> None:
    archive = make_tarball({"train.py": b"print('hi')", "../../../escaped.py": b"evil"})
    put_local(data_dir, "s3://code/src/sourcedir.tar.gz", archive)
    payload = python_job(
        "pass",
        HyperParameters={"sagemaker_submit_directory": '"s3://code/src/sourcedir.tar.gz"'},
    )
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec_for(payload)))
    assert progress.phase is TrainingPhase.FAILED
    assert "escaped.py" in (progress.failure_reason or "")
    assert not any(path.name == "escaped.py" for path in data_dir.parent.rglob("*"))


def test_model_symlinks_pointing_outside_are_not_packed(data_dir: Path) -> None:
    code = (
        "import os; m = os.environ['SAGEMAKER_BASE_DIR'] + '/model/';"
        "open(m + 'real.txt', 'w').write('r');"
        "os.symlink('/etc/hostname', m + 'outside');"
        "os.symlink('real.txt', m + 'inside')"
    )
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec_for(python_job(code))))
    assert progress.phase is TrainingPhase.COMPLETED
    assert progress.model_artifacts is not None
    data = (data_dir / "s3" / progress.model_artifacts.removeprefix("s3://")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {m.name: m.isfile() for m in tar.getmembers()} == {"inside": True, "real.txt": True}
