"""The object store: one contract over a local directory and a real S3 endpoint."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.local.objectstore import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    UnsafeKeyError,
    parse_uri,
)


@pytest.fixture(params=["directory", "s3"])
def store_and_bucket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ObjectStore, str]]:
    if request.param == "directory":
        yield ObjectStore.local(tmp_path / "s3"), "local-bucket"
        return
    client: Any = request.getfixturevalue("s3_client")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    name = f"contract-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield ObjectStore.s3(endpoint, "us-east-1"), name


def _upload(store: ObjectStore, tmp_path: Path, uri: str, content: bytes) -> None:
    source = tmp_path / f"upload-{uuid.uuid4().hex}"
    source.write_bytes(content)
    store.upload(source, uri)


def test_uploaded_objects_can_be_listed_read_and_downloaded(
    store_and_bucket: tuple[ObjectStore, str], tmp_path: Path
) -> None:
    store, bucket = store_and_bucket
    for key, content in [("d/a.txt", b"a"), ("d/sub/b.txt", b"bb"), ("dx.txt", b"x")]:
        _upload(store, tmp_path, f"s3://{bucket}/{key}", content)

    assert [(o.key, o.size) for o in store.list(f"s3://{bucket}/d/")] == [
        ("d/a.txt", 1),
        ("d/sub/b.txt", 2),
    ]
    assert [o.key for o in store.list(f"s3://{bucket}/d")] == ["d/a.txt", "d/sub/b.txt", "dx.txt"]
    assert store.list(f"s3://{bucket}/nothing/") == []
    assert store.read(f"s3://{bucket}/d/sub/b.txt") == b"bb"
    target = tmp_path / "out" / "deep" / "b.txt"
    store.download(f"s3://{bucket}/d/sub/b.txt", target)
    assert target.read_bytes() == b"bb"


def test_missing_object_is_not_found(store_and_bucket: tuple[ObjectStore, str]) -> None:
    store, bucket = store_and_bucket
    with pytest.raises(ObjectNotFoundError):
        store.read(f"s3://{bucket}/absent")


def test_an_upload_to_a_missing_s3_bucket_is_a_store_error(
    s3_endpoint: str, s3_credentials: None, tmp_path: Path
) -> None:
    # boto3's upload_file raises its own S3UploadFailedError, not a botocore error
    store = ObjectStore.s3(s3_endpoint, "us-east-1")
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        _upload(store, tmp_path, f"s3://absent-{uuid.uuid4().hex[:12]}/key", b"x")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/../outside",
        "s3://bucket/a/../../outside",
        "s3://bucket//etc/passwd",
        "s3://bucket/a//b",
        "s3://bucket/./a",
        "file:///tmp/../etc/passwd",
    ],
)
def test_keys_that_could_escape_the_root_are_rejected(uri: str) -> None:
    with pytest.raises(UnsafeKeyError):
        parse_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/x",
        "s3://",
        "s3://../x",
        "s3://bad!bucket/k",
        "s3://-dash/k",
        "file://host/x",
    ],
)
def test_uris_that_are_not_s3_or_local_files_are_rejected(uri: str) -> None:
    with pytest.raises(ObjectStoreError):
        parse_uri(uri)


def test_directory_store_never_leaves_its_root(tmp_path: Path) -> None:
    # Given a bucket directory with a symlink pointing outside the store
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "s3"
    (root / "b").mkdir(parents=True)
    os.symlink(outside, root / "b" / "link")
    os.symlink(tmp_path, root / "b" / "dirlink")
    store = ObjectStore.local(root)

    with pytest.raises(UnsafeKeyError):
        store.read("s3://b/link")
    with pytest.raises(UnsafeKeyError):
        store.upload(outside, "s3://b/dirlink/planted.txt")
    assert store.list("s3://b/") == []
    assert not (tmp_path / "planted.txt").exists()


def test_file_uris_read_local_files_and_can_be_disabled(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.txt").write_text("f")
    uri = f"file://{tmp_path}/data/"
    store = ObjectStore.local(tmp_path / "s3")
    assert [o.uri for o in store.list(uri)] == [parse_uri(f"file://{tmp_path}/data/f.txt")]
    assert store.read(f"file://{tmp_path}/data/f.txt") == b"f"
    with pytest.raises(ObjectStoreError):
        ObjectStore(store.buckets, allow_file_uris=False).list(uri)
