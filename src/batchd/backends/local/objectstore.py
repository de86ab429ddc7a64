"""Object storage by URI: one adapter for the ``s3://`` and ``file://`` URIs found in payloads.

``ObjectStore`` resolves a URI and delegates to a ``Buckets`` implementation for ``s3://``:

- ``DirectoryBuckets``: a local directory, ``<root>/<bucket>/<key>`` (the embedded default,
  ``<data_dir>/s3``);
- ``S3Buckets``: any S3-compatible endpoint through boto3 (real S3, MinIO, moto), credentials from
  the standard chain.

``file:///absolute/path`` URIs name local files directly and follow the same prefix rules as keys.

Every method blocks (disk or network I/O): async callers run them in a thread. Keys are checked
before use: an absolute key, or one with an empty, ``.`` or ``..`` segment, raises
``UnsafeKeyError`` and never touches the disk, so nothing can escape the root.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

__all__ = [
    "Buckets",
    "DirectoryBuckets",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectURI",
    "S3Buckets",
    "StoredObject",
    "UnsafeKeyError",
    "check_key",
    "parse_uri",
]

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class ObjectStoreError(Exception):
    """A URI could not be resolved, or the storage refused an operation."""


class UnsafeKeyError(ObjectStoreError):
    """A key or relative path that could escape its root (absolute, ``..``, empty segment)."""


class ObjectNotFoundError(ObjectStoreError):
    """The named object does not exist."""


@dataclass(frozen=True)
class ObjectURI:
    """A parsed ``s3://bucket/key`` or ``file:///path`` (bucket empty, key the path sans '/')."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file:///{self.key}"
        return f"s3://{self.bucket}/{self.key}"

    def child(self, relative: str) -> ObjectURI:
        """The URI of ``relative`` under this one (taken as a directory prefix)."""
        check_key(relative)
        base = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return ObjectURI(self.scheme, self.bucket, base + relative)


@dataclass(frozen=True)
class StoredObject:
    """One object found by ``ObjectStore.list``."""

    uri: ObjectURI
    size: int

    @property
    def key(self) -> str:
        return self.uri.key


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path; raise UnsafeKeyError otherwise."""
    if not key or key.startswith("/") or "\x00" in key:
        raise UnsafeKeyError(f"unsafe object key {key!r}: empty, absolute or contains NUL")
    trimmed = key[:-1] if key.endswith("/") else key
    for segment in trimmed.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafeKeyError(f"unsafe object key {key!r}: empty, '.' or '..' path segment")
    return key


def parse_uri(uri: str) -> ObjectURI:
    """Parse ``s3://bucket[/key]`` or ``file:///abs/path``; raise ObjectStoreError if neither."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise ObjectStoreError(f"unsupported URI {uri!r}: query or fragment not allowed")
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise ObjectStoreError(f"invalid bucket name in {uri!r}")
        key = parts.path[1:] if parts.path.startswith("/") else parts.path
        if key:
            check_key(key)
        return ObjectURI("s3", bucket, key)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ObjectStoreError(f"file URI {uri!r} must name a local absolute path")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ObjectStoreError(f"file URI {uri!r} must name an absolute path")
        key = path.lstrip("/")
        if key:
            check_key(key)
        return ObjectURI("file", "", key)
    raise ObjectStoreError(f"unsupported URI {uri!r}: expected s3://bucket/key or file:///path")


class Buckets(Protocol):
    """Storage behind ``s3://`` URIs. Keys reaching these methods are already checked."""

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object whose key starts with ``prefix``, sorted by key."""

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Copy one object to the local file ``dest`` (parents exist)."""

    def read(self, bucket: str, key: str) -> bytes:
        """The content of one object."""

    def upload(self, src: Path, bucket: str, key: str) -> None:
        """Store the local file ``src`` as one object."""


class DirectoryBuckets:
    """Buckets as directories: ``<root>/<bucket>/<key>``; ``root='/'`` with bucket '' is the
    plain file system (how ``file://`` URIs are served)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))

    def _path(self, bucket: str, key: str) -> Path:
        base = self.root / bucket if bucket else self.root
        path = base / check_key(key) if key else base
        real_base, real = os.path.realpath(base), os.path.realpath(path)
        if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
            raise UnsafeKeyError(f"object key {key!r} resolves outside its bucket")
        return path

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        base = self._path(bucket, "")
        start = self._path(bucket, prefix.rsplit("/", 1)[0]) if "/" in prefix else base
        found = [(key, size) for key, size in _walk(base, start) if key.startswith(prefix)]
        return sorted(found)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        source = self._path(bucket, key)
        if not source.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in bucket {bucket!r}")
        shutil.copyfile(source, dest)

    def read(self, bucket: str, key: str) -> bytes:
        source = self._path(bucket, key)
        if not source.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in bucket {bucket!r}")
        return source.read_bytes()

    def upload(self, src: Path, bucket: str, key: str) -> None:
        target = self._path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _walk(base: Path, start: Path) -> Iterator[tuple[str, int]]:
    """(key relative to base, size) of each regular file under ``start``; no symlinks followed."""
    if start.is_file() and not start.is_symlink():
        yield start.relative_to(base).as_posix(), start.stat().st_size
        return
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".upload-") or path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(base).as_posix(), path.stat().st_size


class S3Buckets:
    """Buckets on an S3-compatible endpoint, through one boto3 client."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region
            )
        self._client = client

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(bucket, prefix):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                found.extend((item["Key"], int(item["Size"])) for item in page.get("Contents", ()))
        return sorted(found)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        with _s3_errors(bucket, key):
            self._client.download_file(bucket, key, str(dest))

    def read(self, bucket: str, key: str) -> bytes:
        with _s3_errors(bucket, key):
            body: bytes = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def upload(self, src: Path, bucket: str, key: str) -> None:
        with _s3_errors(bucket, key):
            self._client.upload_file(str(src), bucket, key)


@contextmanager
def _s3_errors(bucket: str, key: str) -> Iterator[None]:
    """Turn botocore errors into ObjectStoreError (404s into ObjectNotFoundError), and boto3's
    own: its transfers wrap a failed PutObject (say, no such bucket) in S3UploadFailedError."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{bucket}/{key}"
    try:
        yield
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            raise ObjectNotFoundError(f"{where}: {code}") from err
        raise ObjectStoreError(f"{where}: {err}") from err
    except (BotoCoreError, Boto3Error) as err:
        raise ObjectStoreError(f"{where}: {err}") from err


class ObjectStore:
    """Resolve ``s3://`` through ``buckets`` and ``file://`` through the local file system."""

    def __init__(self, buckets: Buckets, *, allow_file_uris: bool = True) -> None:
        self.buckets = buckets
        self.allow_file_uris = allow_file_uris
        self._files = DirectoryBuckets(Path("/"))
        self._forbidden: list[Path] = []

    def forbid_files_under(self, root: Path) -> None:
        """Refuse ``file://`` URIs that lead into ``root`` (the server's own state and other
        jobs' trees), wherever symlinks take them."""
        self._forbidden.append(root.resolve())

    @classmethod
    def local(cls, root: Path) -> ObjectStore:
        """The embedded store: bucket ``b`` is the directory ``root/b``."""
        return cls(DirectoryBuckets(root))

    @classmethod
    def s3(cls, endpoint_url: str | None = None, region: str | None = None) -> ObjectStore:
        """An S3-compatible endpoint (None: AWS's), credentials from the standard chain."""
        return cls(S3Buckets(endpoint_url=endpoint_url, region=region))

    def _resolve(self, uri: str | ObjectURI) -> tuple[Buckets, ObjectURI]:
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        if parsed.scheme == "file":
            if not self.allow_file_uris:
                raise ObjectStoreError(f"file:// URIs are disabled: {parsed}")
            target = Path("/", parsed.key).resolve()
            for root in self._forbidden:
                if target == root or root in target.parents:
                    raise ObjectStoreError(
                        f"{parsed} is inside batchd's data directory; address objects there "
                        "as s3://bucket/key"
                    )
            return self._files, parsed
        return self.buckets, parsed

    def list(self, uri: str | ObjectURI) -> list[StoredObject]:
        """Every object whose key starts with the URI's key, sorted by key."""
        buckets, parsed = self._resolve(uri)
        return [
            StoredObject(ObjectURI(parsed.scheme, parsed.bucket, key), size)
            for key, size in buckets.list(parsed.bucket, parsed.key)
        ]

    def read(self, uri: str | ObjectURI) -> bytes:
        buckets, parsed = self._resolve(uri)
        return buckets.read(parsed.bucket, check_key(parsed.key))

    def download(self, uri: str | ObjectURI, dest: Path) -> None:
        """Copy one object to ``dest``, creating its parent directories."""
        buckets, parsed = self._resolve(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        buckets.download(parsed.bucket, check_key(parsed.key), dest)

    def upload(self, src: Path, uri: str | ObjectURI) -> None:
        buckets, parsed = self._resolve(uri)
        buckets.upload(src, parsed.bucket, check_key(parsed.key))
