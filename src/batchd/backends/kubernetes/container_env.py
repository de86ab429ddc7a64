"""What batchd's steps inside a training pod read from their environment (POD_CONTRACT.md).

The backend gives every container of a pod the same variables: the CreateTrainingJob request
as JSON, the job's name, this pod's host and the S3 endpoint. The request is parsed with the
local backend's ``parse_request``, so a pod sees the same hosts, channels and output path as a
local attempt of the same payload would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchd import jsontext
from batchd.backends.local.objectstore import ObjectStore, S3Buckets
from batchd.backends.local.payload import InvalidRequest, TrainingRequest, parse_request

__all__ = [
    "DEFAULT_ROOT",
    "DEV_TERMINATION_LOG",
    "PodContext",
    "StepError",
    "read_context",
    "termination_log",
]

DEFAULT_ROOT = Path("/opt/ml")
DEV_TERMINATION_LOG = Path("/dev/termination-log")


class StepError(Exception):
    """A step cannot go on; ``str()`` is the one-line reason the pod reports."""


@dataclass(frozen=True)
class PodContext:
    """One pod's view of its attempt."""

    root: Path  # SAGEMAKER_BASE_DIR: /opt/ml, or where a stand-in kubelet mapped the volume
    host: str  # algo-N
    request: TrainingRequest
    store: ObjectStore

    @property
    def first_host(self) -> bool:
        """SageMaker uploads artifacts from the first host only."""
        return self.host == self.request.cluster.hosts[0]


def base_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("SAGEMAKER_BASE_DIR") or DEFAULT_ROOT)


def termination_log(environ: Mapping[str, str]) -> Path:
    """Where the failure reason goes: ``$BATCHD_TERMINATION_LOG``, else the file the kubelet
    mounts at /dev/termination-log (never created here: outside a pod /dev is the host's),
    else ``output/failure`` under the base directory."""
    given = environ.get("BATCHD_TERMINATION_LOG")
    if given:
        return Path(given)
    if DEV_TERMINATION_LOG.is_file() and os.access(DEV_TERMINATION_LOG, os.W_OK):
        return DEV_TERMINATION_LOG
    return base_dir(environ) / "output" / "failure"


def read_context(environ: Mapping[str, str]) -> PodContext:
    """The pod's context; StepError when a variable is missing or disagrees with the request."""
    name = _required(environ, "TRAINING_JOB_NAME")
    host = environ.get("CURRENT_HOST") or _required(environ, "SM_CURRENT_HOST")
    raw = _required(environ, "BATCHD_TRAINING_REQUEST")
    try:
        payload = jsontext.loads(raw)
    except ValueError as err:
        raise StepError(f"InternalServerError: BATCHD_TRAINING_REQUEST is not JSON: {err}") from err
    if not isinstance(payload, dict):
        raise StepError("InternalServerError: BATCHD_TRAINING_REQUEST is not a JSON object")
    try:
        request = parse_request(name, payload)
    except InvalidRequest as err:
        raise StepError(f"{err.code}: {err.message}") from err
    hosts = request.cluster.hosts
    if host not in hosts:
        raise StepError(
            f"InternalServerError: CURRENT_HOST {host!r} is not one of the job's hosts "
            f"{','.join(hosts)}"
        )
    listed = environ.get("BATCHD_HOSTS")
    if listed is not None and listed != ",".join(hosts):
        # The pods the backend made and the cluster written to resourceconfig.json must agree,
        # or training would wait for hosts that never come.
        raise StepError(
            f"InternalServerError: BATCHD_HOSTS {listed!r} disagrees with the request's "
            f"hosts {','.join(hosts)}"
        )
    return PodContext(base_dir(environ), host, request, _store(environ))


def _required(environ: Mapping[str, str], key: str) -> str:
    value = environ.get(key)
    if not value:
        raise StepError(f"InternalServerError: {key} is not set in the pod's environment")
    return value


def _store(environ: Mapping[str, str]) -> ObjectStore:
    """S3 through boto3's standard credential chain. The endpoint is passed explicitly (boto3
    reads AWS_ENDPOINT_URL_S3 by itself only since 1.28). ``file://`` URIs would name files of
    the batchd image, never the user's, so they are refused."""
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
    return ObjectStore(S3Buckets(endpoint_url=endpoint, region=region), allow_file_uris=False)
