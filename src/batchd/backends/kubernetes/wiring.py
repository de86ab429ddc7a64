"""The kubernetes backend built from the server's settings."""

from __future__ import annotations

import os

from batchd.backends.base import Wake
from batchd.backends.kubernetes.backend import KubernetesBackend
from batchd.backends.kubernetes.connect import api_client, default_namespace
from batchd.backends.kubernetes.instance_types import InstanceTypes
from batchd.backends.kubernetes.manifests import PodSettings
from batchd.errors import StartupError
from batchd.settings import Settings

__all__ = ["kubernetes_backend"]

# What batchd's steps in the pod need to reach the object store as batchd does.
_PASSED_ON = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def kubernetes_backend(settings: Settings, wake: Wake) -> KubernetesBackend:
    try:
        types = InstanceTypes.load(settings.kubernetes_instance_types)
    except (OSError, ValueError) as err:
        raise StartupError(f"--kubernetes-instance-types: {err}") from err
    env = {name: os.environ[name] for name in _PASSED_ON if os.environ.get(name)}
    if settings.s3_endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = settings.s3_endpoint_url
    namespace = settings.kubernetes_namespace or default_namespace(settings.kubeconfig)
    pods = PodSettings(
        namespace=namespace,
        batchd_image=settings.kubernetes_batchd_image,
        extra_env=env,
        instance_types=types,
        termination_grace_seconds=int(settings.stop_grace_seconds),
    )
    return KubernetesBackend(
        api_client(settings.kubeconfig),
        namespace,
        pods,
        wake=wake,
        unschedulable_seconds=settings.kubernetes_unschedulable_seconds,
    )
