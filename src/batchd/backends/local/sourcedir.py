"""Pre-staging user code: ``sagemaker_submit_directory`` extracted into each host's ``code/``.

The SageMaker SDK uploads the user's source as ``sourcedir.tar.gz`` and passes its ``s3://`` URI
in the ``sagemaker_submit_directory`` hyperparameter. The toolkit downloads it with boto3 only if
``code/`` is empty, so extracting it here first serves it from our object store (local
directory or S3 endpoint) and the toolkit never calls S3. Local paths are left to the toolkit.

Archives are untrusted: every member must be a regular file or directory (or a link whose target
stays inside) with a relative name without ``..``; anything else fails the attempt.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from batchd.backends.local.channels import StagingError
from batchd.backends.local.objectstore import ObjectStore, ObjectStoreError
from batchd.backends.local.payload import TrainingRequest
from batchd.backends.local.workspace import Workspace

__all__ = ["UnsafeArchiveError", "safe_extract", "stage_source", "stage_source_into"]


class UnsafeArchiveError(ValueError):
    """A tar member would land outside the destination, or is a device or FIFO."""


def stage_source(store: ObjectStore, workspace: Workspace, request: TrainingRequest) -> None:
    """Extract the submit directory into every host's ``code/`` (blocking).

    Raises StagingError, whose text is the attempt's FailureReason.
    """
    bases = [workspace.base(host) for host in request.cluster.hosts]
    stage_source_into(store, request, workspace.scratch, bases)


def stage_source_into(
    store: ObjectStore, request: TrainingRequest, scratch: Path, bases: Sequence[Path]
) -> None:
    """Extract the submit directory into ``code/`` under each of ``bases``, downloading it once
    into ``scratch`` (blocking). Raises StagingError as ``stage_source``."""
    uri = request.submit_directory
    if uri is None or not uri.startswith(("s3://", "file://")):
        return
    archive = scratch / "sourcedir.tar.gz"
    try:
        store.download(uri, archive)
        for base in bases:
            safe_extract(archive, base / "code")
    except (ObjectStoreError, UnsafeArchiveError, tarfile.TarError, OSError) as err:
        raise StagingError(
            f"ClientError: cannot stage sagemaker_submit_directory {uri!r}: {err}"
        ) from err
    finally:
        archive.unlink(missing_ok=True)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a (possibly compressed) tar into ``dest`` after checking every member."""
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            check_member(member)
        tar.extractall(dest, members=members, filter="data")


def check_member(member: tarfile.TarInfo) -> None:
    """Raise UnsafeArchiveError unless ``member`` stays inside the extraction directory."""
    name = member.name
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"tar member {name!r} is not a file, directory or link")
    if ".." in name.split("/"):
        raise UnsafeArchiveError(f"tar member {name!r} has a '..' path segment")
    _check_relative(name, name)
    if member.issym():
        parent = PurePosixPath(name).parent
        _check_relative(name, (parent / member.linkname).as_posix())
    elif member.islnk():
        _check_relative(name, member.linkname)


def _check_relative(member: str, path: str) -> None:
    if path.startswith("/") or "\x00" in path:
        raise UnsafeArchiveError(f"tar member {member!r} has an absolute path")
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            raise UnsafeArchiveError(f"tar member {member!r} escapes the destination")
