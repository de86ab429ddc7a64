"""The CreateTrainingJob request, read once into typed values the local backend acts on.

Batch passes ``serviceRequestPayload`` through unvalidated; SageMaker validates at
CreateTrainingJob. ``parse_request`` does the part of that validation the local backend relies on
(names that become directories, channel and cluster shapes, environment, stopping condition) and
raises ``InvalidRequest`` (a ``ValidationException``) for anything it cannot run safely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchd import jsontext

__all__ = [
    "Channel",
    "Cluster",
    "InstanceGroup",
    "InvalidRequest",
    "TrainingRequest",
    "check_job_name",
    "parse_request",
]

HOMOGENEOUS_GROUP = "homogeneousCluster"
MAX_LOCAL_HOSTS = 64
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$")
_DATA_TYPES = ("S3Prefix", "ManifestFile")
_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
_INPUT_MODES = ("File", "FastFile")


class InvalidRequest(ValueError):
    """The request cannot be run; ``code`` is the SageMaker error code to report."""

    def __init__(self, message: str, code: str = "ValidationException") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Channel:
    """One ``InputDataConfig`` entry the backend can stage (File/FastFile, S3 data source)."""

    name: str
    data_type: str  # S3Prefix | ManifestFile
    uri: str
    distribution: str  # FullyReplicated | ShardedByS3Key
    content_type: str | None
    record_wrapper: str

    def data_config(self) -> dict[str, str]:
        """This channel's entry in ``inputdataconfig.json`` (FastFile is reported as File)."""
        entry = {"TrainingInputMode": "File", "S3DistributionType": self.distribution}
        entry["RecordWrapperType"] = self.record_wrapper
        if self.content_type is not None:
            entry["ContentType"] = self.content_type
        return entry


@dataclass(frozen=True)
class InstanceGroup:
    name: str
    instance_type: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Cluster:
    """The hosts of one training job, ``algo-1`` … ``algo-N`` across its instance groups."""

    groups: tuple[InstanceGroup, ...]
    heterogeneous: bool

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for group in self.groups for host in group.hosts)

    def group_of(self, host: str) -> InstanceGroup:
        return next(group for group in self.groups if host in group.hosts)


@dataclass(frozen=True)
class TrainingRequest:
    """What the local backend needs from one CreateTrainingJob request."""

    name: str
    hyperparameters: Mapping[str, Any]  # verbatim
    environment: Mapping[str, str]
    channels: tuple[Channel, ...]
    cluster: Cluster
    image: str | None
    entrypoint: tuple[str, ...]
    arguments: tuple[str, ...]
    output_path: str
    compress_model: bool
    max_runtime_seconds: float | None
    submit_directory: str | None


def check_job_name(name: str) -> str:
    """A SageMaker training job name; it never contains '/', '.' or '..'."""
    if not isinstance(name, str) or not _JOB_NAME.match(name):
        raise InvalidRequest(
            f"Invalid TrainingJobName {name!r}: must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}"
        )
    return name


def parse_request(name: str, payload: Mapping[str, Any]) -> TrainingRequest:
    algorithm = _mapping(payload, "AlgorithmSpecification")
    output = _mapping(payload, "OutputDataConfig")
    output_path = output.get("S3OutputPath")
    if not isinstance(output_path, str) or not output_path:
        raise InvalidRequest("OutputDataConfig.S3OutputPath is required")
    hyperparameters = _mapping(payload, "HyperParameters")
    entrypoint = _strings(algorithm, "ContainerEntrypoint")
    image = algorithm.get("TrainingImage")
    if image is not None and not isinstance(image, str):
        raise InvalidRequest("AlgorithmSpecification.TrainingImage must be a string")
    if not entrypoint and not image:
        raise InvalidRequest("AlgorithmSpecification needs TrainingImage or ContainerEntrypoint")
    default_mode = algorithm.get("TrainingInputMode", "File")
    return TrainingRequest(
        name=check_job_name(name),
        hyperparameters=dict(hyperparameters),
        environment=_environment(payload),
        channels=_channels(payload, default_mode),
        cluster=_cluster(payload),
        image=image,
        entrypoint=entrypoint,
        arguments=_strings(algorithm, "ContainerArguments"),
        output_path=output_path,
        compress_model=str(output.get("CompressionType", "GZIP")).upper() != "NONE",
        max_runtime_seconds=_max_runtime(payload),
        submit_directory=_submit_directory(hyperparameters),
    )


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key, {})
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{key} must be an object")
    return value


def _strings(parent: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = parent.get(key, ())
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidRequest(f"{key} must be a list of strings")
    if not all(isinstance(item, str) and "\x00" not in item for item in value):
        raise InvalidRequest(f"{key} must be a list of strings without NUL")
    return tuple(value)


def _environment(payload: Mapping[str, Any]) -> dict[str, str]:
    environment = _mapping(payload, "Environment")
    for key, value in environment.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise InvalidRequest(f"Invalid Environment key {key!r}")
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidRequest(f"Environment value of {key} must be a string")
    return dict(environment)


def _channels(payload: Mapping[str, Any], default_mode: str) -> tuple[Channel, ...]:
    raw = payload.get("InputDataConfig", ())
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InvalidRequest("InputDataConfig must be a list of channels")
    channels = tuple(_channel(entry, default_mode) for entry in raw)
    names = [channel.name for channel in channels]
    if len(set(names)) != len(names):
        raise InvalidRequest("InputDataConfig has duplicate channel names")
    return channels


def _channel(entry: Any, default_mode: str) -> Channel:
    if not isinstance(entry, Mapping):
        raise InvalidRequest("each InputDataConfig entry must be an object")
    name = entry.get("ChannelName")
    if not isinstance(name, str) or not _CHANNEL_NAME.match(name) or name in (".", ".."):
        raise InvalidRequest(f"Invalid ChannelName {name!r}: must match [A-Za-z0-9.-_]{{1,64}}")
    source = _mapping(_mapping(entry, "DataSource"), "S3DataSource")
    if not source:
        raise InvalidRequest(
            f"Channel {name}: only S3DataSource is supported by the local backend",
            code="ValidationException",
        )
    mode = entry.get("InputMode", default_mode)
    data_type = source.get("S3DataType", "S3Prefix")
    distribution = source.get("S3DataDistributionType", "FullyReplicated")
    uri = source.get("S3Uri")
    if mode not in _INPUT_MODES:
        raise InvalidRequest(f"Channel {name}: InputMode {mode!r} is not supported locally")
    if data_type not in _DATA_TYPES:
        raise InvalidRequest(f"Channel {name}: S3DataType {data_type!r} is not supported locally")
    if distribution not in _DISTRIBUTIONS:
        raise InvalidRequest(f"Channel {name}: invalid S3DataDistributionType {distribution!r}")
    if not isinstance(uri, str) or not uri:
        raise InvalidRequest(f"Channel {name}: S3Uri is required")
    content_type = entry.get("ContentType")
    return Channel(
        name=name,
        data_type=data_type,
        uri=uri,
        distribution=distribution,
        content_type=content_type if isinstance(content_type, str) else None,
        record_wrapper=str(entry.get("RecordWrapperType", "None")),
    )


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{where} must be a non-negative integer")
    return value


def _cluster(payload: Mapping[str, Any]) -> Cluster:
    config = _mapping(payload, "ResourceConfig")
    raw_groups = config.get("InstanceGroups") or ()
    if not isinstance(raw_groups, Sequence) or isinstance(raw_groups, str):
        raise InvalidRequest("ResourceConfig.InstanceGroups must be a list")
    if raw_groups:
        specs = []
        for group in raw_groups:
            if not isinstance(group, Mapping) or not isinstance(
                group.get("InstanceGroupName"), str
            ):
                raise InvalidRequest("each InstanceGroup needs an InstanceGroupName")
            count = _count(group.get("InstanceCount", 1), "InstanceGroup.InstanceCount")
            specs.append((group["InstanceGroupName"], str(group.get("InstanceType")), count))
    else:
        count = _count(config.get("InstanceCount", 1), "ResourceConfig.InstanceCount")
        specs = [(HOMOGENEOUS_GROUP, str(config.get("InstanceType", "local")), max(count, 1))]
    total = sum(count for _, _, count in specs)
    if total == 0:
        raise InvalidRequest("ResourceConfig.InstanceGroups request no instances")
    if total > MAX_LOCAL_HOSTS:
        raise InvalidRequest(
            f"{total} instances requested; the local backend runs at most {MAX_LOCAL_HOSTS}",
            code="ResourceLimitExceeded",
        )
    groups, first = [], 1
    for group_name, instance_type, count in specs:
        hosts = tuple(f"algo-{n}" for n in range(first, first + count))
        groups.append(InstanceGroup(group_name, instance_type, hosts))
        first += count
    return Cluster(tuple(groups), heterogeneous=bool(raw_groups))


def _max_runtime(payload: Mapping[str, Any]) -> float | None:
    value = _mapping(payload, "StoppingCondition").get("MaxRuntimeInSeconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        raise InvalidRequest("StoppingCondition.MaxRuntimeInSeconds must be >= 1")
    return float(value)


def _submit_directory(hyperparameters: Mapping[str, Any]) -> str | None:
    """The ``sagemaker_submit_directory`` hyperparameter, JSON-decoded as the toolkit does."""
    raw = hyperparameters.get("sagemaker_submit_directory")
    if not isinstance(raw, str):
        return None
    try:
        value = jsontext.loads(raw)
    except ValueError:
        value = raw
    return value if isinstance(value, str) and value else None
