"""The Kubernetes objects of one attempt, as plain API bodies: pure functions, no client.

One attempt of N hosts is a headless Service ``bd-<attempt id>`` and one batch/v1 Job per host,
``bd-<attempt id>-algo-<i>``. Names come from the attempt id, so a create repeated after a
crash answers 409 instead of starting the attempt twice. Kubernetes 1.20 has no Indexed Jobs
and no sidecars, which is why there is a Job per host and why the pod runs batchd's staging
and the training as init containers and batchd's packing as its one container: that is the
only order 1.20 guarantees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchd import jsontext
from batchd.backends.base import LaunchSpec
from batchd.backends.kubernetes.instance_types import InstanceTypes
from batchd.backends.local.payload import TrainingRequest

__all__ = [
    "ATTEMPT",
    "HOST",
    "JOB_ID",
    "MANAGED",
    "TRAINING_JOB",
    "PodSettings",
    "attempt_objects",
    "host_job_name",
    "service_name",
]

MANAGED = "batchd.io/managed-by"
JOB_ID = "batchd.io/job-id"
ATTEMPT = "batchd.io/attempt-id"
TRAINING_JOB = "batchd.io/training-job"
HOST = "batchd.io/host"
QUEUE = "batchd.io/queue"
FAILURE_FILE = "/opt/ml/output/failure"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class PodSettings:
    """What every attempt's pods share: where batchd's own steps come from, and what they see."""

    batchd_image: str = "batchd:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    # Variables every container gets (the S3 endpoint and its credentials).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    instance_types: InstanceTypes = field(default_factory=InstanceTypes)
    termination_grace_seconds: int = 120  # SageMaker's docker stop -t120
    # Where the attempt's headless Service lives, for the pods' DNS search path.
    namespace: str = "default"
    cluster_domain: str = "cluster.local"


def service_name(attempt_id: str) -> str:
    return f"bd-{attempt_id}"


def host_job_name(attempt_id: str, host: str) -> str:
    return f"bd-{attempt_id}-{host}"


def deadline_seconds(request: TrainingRequest, attempt_seconds: int | None) -> int | None:
    """The earlier of MaxRuntimeInSeconds and the job's attemptDurationSeconds."""
    limits = [int(request.max_runtime_seconds or 0), int(attempt_seconds or 0)]
    found = [limit for limit in limits if limit > 0]
    return min(found) if found else None


def labels(spec: LaunchSpec, queue: str | None) -> dict[str, str]:
    found = {
        MANAGED: "batchd",
        JOB_ID: spec.job_id,
        ATTEMPT: spec.attempt_id,
        TRAINING_JOB: spec.training_job_name,
    }
    if queue and len(queue) <= 63 and _LABEL_VALUE.match(queue):
        found[QUEUE] = queue
    return found


def attempt_objects(
    spec: LaunchSpec,
    request: TrainingRequest,
    settings: PodSettings,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Service and the Jobs, ``algo-1`` first. Raises UnknownInstanceType."""
    queue = spec.queue
    common = labels(spec, queue)
    annotations = {"batchd.io/job-arn": spec.job_arn, "batchd.io/queue": queue or ""}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(spec.attempt_id),
            "labels": common,
            "annotations": annotations,
        },
        "spec": {
            "clusterIP": "None",
            "selector": {ATTEMPT: spec.attempt_id},
            # Hosts find each other before they are Ready (the training opens the ports).
            "publishNotReadyAddresses": True,
        },
    }
    deadline = deadline_seconds(request, spec.attempt_duration_seconds)
    jobs = []
    for host in request.cluster.hosts:
        host_labels = {**common, HOST: host}
        job_spec: dict[str, Any] = {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": host_labels, "annotations": annotations},
                "spec": _pod_spec(spec, request, settings, host),
            },
        }
        if deadline is not None:
            job_spec["activeDeadlineSeconds"] = deadline
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": host_job_name(spec.attempt_id, host),
                    "labels": host_labels,
                    "annotations": annotations,
                },
                "spec": job_spec,
            }
        )
    return service, jobs


def _pod_spec(
    spec: LaunchSpec, request: TrainingRequest, settings: PodSettings, host: str
) -> dict[str, Any]:
    group = request.cluster.group_of(host)
    placement = settings.instance_types.placement(group.instance_type)
    env = _env(spec, request, settings, host, group.instance_type)
    mount = [{"name": "opt-ml", "mountPath": "/opt/ml"}]
    batchd_step = {
        "image": settings.batchd_image,
        "imagePullPolicy": settings.image_pull_policy,
        # batchd's steps print their reason last; the failure file belongs to the training.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": env,
        "volumeMounts": mount,
    }
    training: dict[str, Any] = {
        "name": "training",
        "image": request.image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": env,
        "volumeMounts": mount,
        "resources": placement.resources(),
        "terminationMessagePath": FAILURE_FILE,
        "terminationMessagePolicy": "File",
        "workingDir": "/opt/ml/code" if request.submit_directory else None,
    }
    if request.entrypoint:
        training["command"] = list(request.entrypoint)
    if request.arguments:
        training["args"] = list(request.arguments)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "hostname": host,
        "subdomain": service_name(spec.attempt_id),
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "volumes": [{"name": "opt-ml", "emptyDir": {}}],
        "initContainers": [
            {"name": "stage", "command": ["batchd", "container", "stage"], **batchd_step},
            {k: v for k, v in training.items() if v is not None},
        ],
        "containers": [
            {
                "name": "finish",
                "command": ["batchd", "container", "finish"],
                **batchd_step,
                # The training image's user may be root and write model files only it can
                # read; packing must read them all.
                "securityContext": {"runAsUser": 0},
            }
        ],
        # The short names algo-N resolve as SageMaker's do: through the Service's domain.
        "dnsConfig": {
            "searches": [
                f"{service_name(spec.attempt_id)}.{settings.namespace}.svc."
                f"{settings.cluster_domain}"
            ]
        },
    }
    if placement.node_selector:
        pod["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod["tolerations"] = [dict(t) for t in placement.tolerations]
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    return pod


def _env(
    spec: LaunchSpec,
    request: TrainingRequest,
    settings: PodSettings,
    host: str,
    instance_type: str,
) -> list[dict[str, str]]:
    hosts = request.cluster.hosts
    values = {
        **request.environment,
        **settings.extra_env,
        "TRAINING_JOB_NAME": spec.training_job_name,
        "TRAINING_JOB_ARN": spec.training_job_arn,
        "CURRENT_HOST": host,
        "SM_CURRENT_HOST": host,
        "SM_HOSTS": jsontext.dumps_text(list(hosts)),
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "BATCHD_HOSTS": ",".join(hosts),
        "BATCHD_INSTANCE_TYPE": instance_type,
        "BATCHD_TRAINING_REQUEST": jsontext.dumps_text(dict(spec.payload)),
    }
    return [{"name": name, "value": value} for name, value in values.items()]
