"""Input data staging: each channel's objects copied into ``input/data/<channel>/`` of each host.

Which objects (``S3DataType``):

- ``S3Prefix``: every object whose key starts with the URI's key. An object whose key is the
  prefix itself lands under its base name (``s3://b/data/train.csv`` gives ``train.csv``); any
  other lands at its key minus the prefix, leading ``/`` removed, so ``s3://b/data/train`` and
  ``s3://b/data/train/`` both give the files under ``data/train/`` at the top of the channel
  (and a sibling ``data/training.csv`` as ``ing.csv``). This is the placement rule of the
  SageMaker SDK's local mode (``sagemaker.utils.download_folder``). Keys ending in ``/``
  ("folder" markers) are skipped.
- ``ManifestFile``: the URI names a JSON list ``[{"prefix": "s3://b/p/"}, "rel/1", ...]``; each
  object is ``prefix + rel`` and lands at ``rel``.

Which hosts (``S3DataDistributionType``): ``FullyReplicated`` gives every host every object
(downloaded once, then copied); ``ShardedByS3Key`` sorts the objects by key and gives host ``i``
of ``N`` (in ``algo-1`` … ``algo-N`` order) objects ``i, i+N, i+2N, ...``.

Every destination is a checked relative path below the channel directory: a key with ``..``,
an empty segment or a leading ``/`` fails the attempt instead of being written.
Everything here blocks; the backend runs it in a thread.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from batchd import jsontext
from batchd.backends.local.objectstore import (
    ObjectStore,
    ObjectStoreError,
    ObjectURI,
    check_key,
    parse_uri,
)
from batchd.backends.local.payload import Channel, TrainingRequest
from batchd.backends.local.workspace import Workspace

__all__ = ["StagingError", "stage_channels", "stage_host_channels"]


class StagingError(Exception):
    """Input data could not be staged; ``str()`` is the attempt's FailureReason."""


@dataclass(frozen=True)
class _Item:
    uri: ObjectURI
    relative: PurePosixPath


def stage_channels(store: ObjectStore, workspace: Workspace, request: TrainingRequest) -> None:
    """Fill every host's channel directories (blocking)."""
    hosts = request.cluster.hosts
    stage_host_channels(store, request, {host: workspace.base(host) for host in hosts})


def stage_host_channels(
    store: ObjectStore, request: TrainingRequest, bases: Mapping[str, Path]
) -> None:
    """Fill the channel directories of the hosts in ``bases`` (host -> its SAGEMAKER_BASE_DIR),
    which may be a subset of the cluster, as a Kubernetes pod stages only its own host; each
    host's ``ShardedByS3Key`` share follows its place in the whole cluster (blocking)."""
    hosts = request.cluster.hosts
    for channel in request.channels:
        try:
            items = _items(store, channel)
            if not items:
                raise StagingError(
                    f"ClientError: No S3 objects found under S3 URL {channel.uri!r} given in "
                    f"input data source of channel {channel.name}. Please ensure that the "
                    "bucket exists and that objects exist under that prefix."
                )
            replicated = channel.distribution == "FullyReplicated"
            first: dict[PurePosixPath, Path] = {}
            for index, host in enumerate(hosts):
                if host not in bases:
                    continue
                share = items if replicated else items[index :: len(hosts)]
                root = bases[host] / "input" / "data" / channel.name
                for item in share:
                    dest = root.joinpath(*item.relative.parts)
                    if item.relative in first:
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(first[item.relative], dest)
                    else:
                        store.download(item.uri, dest)
                        first[item.relative] = dest
        except (ObjectStoreError, OSError, ValueError) as err:
            raise StagingError(
                f"ClientError: Data download failed for channel {channel.name}: {err}"
            ) from err


def _items(store: ObjectStore, channel: Channel) -> list[_Item]:
    if channel.data_type == "ManifestFile":
        return _manifest_items(store, channel.uri)
    prefix = parse_uri(channel.uri)
    return [
        _Item(found.uri, _placement(found.key, prefix.key))
        for found in store.list(prefix)
        if not found.key.endswith("/")  # a "folder" marker
    ]


def _placement(key: str, prefix: str) -> PurePosixPath:
    """Where an object found under ``prefix`` lands in the channel directory (checked safe)."""
    if key == prefix:
        return PurePosixPath(check_key(key.rsplit("/", 1)[-1]))
    return PurePosixPath(check_key(key[len(prefix) :].lstrip("/")))


def _manifest_items(store: ObjectStore, uri: str) -> list[_Item]:
    try:
        manifest = jsontext.loads(store.read(uri))
    except ValueError as err:
        raise StagingError(f"ClientError: manifest file {uri!r} is not valid JSON") from err
    if (
        not isinstance(manifest, list)
        or not manifest
        or not isinstance(manifest[0], dict)
        or not isinstance(manifest[0].get("prefix"), str)
        or not all(isinstance(entry, str) for entry in manifest[1:])
    ):
        raise StagingError(
            f"ClientError: manifest file {uri!r} must be a JSON list "
            '[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]'
        )
    prefix: str = manifest[0]["prefix"]
    return [
        _Item(parse_uri(prefix + check_key(entry)), PurePosixPath(entry))
        for entry in sorted(set(manifest[1:]))
    ]
