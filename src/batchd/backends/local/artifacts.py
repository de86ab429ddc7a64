"""Packing what the training left behind and uploading it next to the job's output path.

- ``model/`` of every host, merged (on a name clash the lowest-numbered host wins), goes to
  ``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz``; with
  ``OutputDataConfig.CompressionType = NONE`` the files are uploaded as they are under
  ``.../output/model/`` and that prefix is the reported model artifact.
- ``output/data/`` of every host, merged the same way, goes to ``.../output/output.tar.gz``
  (``CompressionType`` concerns the model only, as in SageMaker).

Archive members are relative paths of regular files. A symlink is packed as its target's
content only if the target is a regular file inside the same tree; other links are skipped,
so an archive never carries a link or a path that points outside.
Everything here blocks; the backend runs it in a thread.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from batchd.backends.local.objectstore import ObjectStore, ObjectURI, parse_uri
from batchd.backends.local.payload import TrainingRequest
from batchd.backends.local.workspace import Workspace

__all__ = ["output_prefix", "pack_tree", "upload_artifacts", "upload_failure", "upload_from"]


def output_prefix(request: TrainingRequest) -> ObjectURI:
    """``<S3OutputPath>/<TrainingJobName>/output``."""
    return parse_uri(f"{request.output_path.rstrip('/')}/{request.name}/output")


def upload_artifacts(store: ObjectStore, workspace: Workspace, request: TrainingRequest) -> str:
    """Upload model and output data; return the model artifacts URI (ModelArtifacts)."""
    bases = [workspace.base(host) for host in request.cluster.hosts]
    return upload_from(store, request, bases, workspace.scratch)


def upload_from(
    store: ObjectStore, request: TrainingRequest, bases: Sequence[Path], scratch: Path
) -> str:
    """Upload the model and output data found under ``bases`` (SAGEMAKER_BASE_DIRs, first host
    first), building archives in ``scratch``; return the model artifacts URI."""
    prefix = output_prefix(request)
    models = [base / "model" for base in bases]
    if request.compress_model:
        model_uri = prefix.child("model.tar.gz")
        _upload_archive(store, models, scratch / "model.tar.gz", model_uri)
    else:
        model_uri = prefix.child("model/")
        for relative, path in merged_files(models):
            store.upload(path, prefix.child(f"model/{relative}"))
    data = [base / "output" / "data" for base in bases]
    _upload_archive(store, data, scratch / "output.tar.gz", prefix.child("output.tar.gz"))
    return str(model_uri)


def upload_failure(err: object) -> str:
    """The FailureReason of a completed training whose artifacts could not be uploaded."""
    return f"ClientError: Failed to upload model artifacts: {err}"


def _upload_archive(
    store: ObjectStore, roots: Sequence[Path], archive: Path, uri: ObjectURI
) -> None:
    pack_tree(roots, archive)
    try:
        store.upload(archive, uri)
    finally:
        archive.unlink(missing_ok=True)


def pack_tree(roots: Sequence[Path], archive: Path) -> None:
    """Write the merged files of ``roots`` as a gzipped tar at ``archive``."""
    with tarfile.open(archive, "w:gz") as tar:
        for relative, path in merged_files(roots):
            info = tar.gettarinfo(os.path.realpath(path), arcname=relative)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as content:
                tar.addfile(info, content)


def merged_files(roots: Sequence[Path]) -> list[tuple[str, Path]]:
    """(relative name, path) of the files under ``roots``; earlier roots win on a clash."""
    merged: dict[str, Path] = {}
    for root in roots:
        for relative, path in _files(root):
            merged.setdefault(relative, path)
    return sorted(merged.items())


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    if not root.is_dir():
        return
    real_root = os.path.realpath(root)
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                target = os.path.realpath(path)
                if not target.startswith(real_root + os.sep) or not os.path.isfile(target):
                    continue
            elif not path.is_file():
                continue
            yield path.relative_to(root).as_posix(), path
