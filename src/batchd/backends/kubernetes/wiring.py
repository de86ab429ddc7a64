"""The kubernetes backend built from the server's options."""

from __future__ import annotations

import os
from pathlib import Path

from batchd.backends.base import Wake
from batchd.backends.kubernetes.backend import KubernetesBackend
from batchd.backends.kubernetes.connect import api_client, default_namespace
from batchd.backends.kubernetes.instance_types import InstanceTypes
from batchd.backends.kubernetes.manifests import PodSettings
from batchd.errors import StartupError

__all__ = ["kubernetes_backend"]

# What batchd's steps in the pod need to reach the object store as batchd does.
_PASSED_ON = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def kubernetes_backend(
    wake: Wake,
    *,
    kubeconfig: Path | None,
    namespace: str | None,
    batchd_image: str,
    instance_types: Path | None,
    unschedulable_seconds: float,
    s3_endpoint_url: str | None,
    stop_grace_seconds: float,
) -> KubernetesBackend:
    try:
        types = InstanceTypes.load(instance_types)
    except (OSError, ValueError) as err:
        raise StartupError(f"--kubernetes-instance-types: {err}") from err
    env = {name: os.environ[name] for name in _PASSED_ON if os.environ.get(name)}
    if s3_endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint_url
    namespace = namespace or default_namespace(kubeconfig)
    pods = PodSettings(
        namespace=namespace,
        batchd_image=batchd_image,
        extra_env=env,
        instance_types=types,
        termination_grace_seconds=int(stop_grace_seconds),
    )
    return KubernetesBackend(
        api_client(kubeconfig),
        namespace,
        pods,
        wake=wake,
        unschedulable_seconds=unschedulable_seconds,
    )
