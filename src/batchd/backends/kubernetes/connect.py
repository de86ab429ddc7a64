"""Reaching the cluster: a kubeconfig file, or the pod's own service account."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config

from batchd.errors import StartupError

__all__ = ["IN_CLUSTER_NAMESPACE", "api_client", "default_namespace"]

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_NAMESPACE.exists()


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """``--kubeconfig`` when given; else in-cluster when batchd runs in a pod; else
    ``$KUBECONFIG`` or ``~/.kube/config`` as kubectl would."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None and _in_cluster():
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                client_configuration=configuration,
            )
    except (config.ConfigException, OSError, ValueError) as err:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig"
        detail = str(err).rstrip(".")
        raise StartupError(
            f"--backend kubernetes: cannot load {where}: {detail}. Give --kubeconfig PATH, or run "
            "batchd in a pod with a service account (see contrib/kubernetes/rbac.yaml)"
        ) from err
    return client.ApiClient(configuration)


def default_namespace(kubeconfig: Path | None) -> str:
    """The pod's namespace in a cluster, else the kubeconfig context's, else ``default``."""
    if kubeconfig is None and _in_cluster():
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    try:
        _, context = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except (config.ConfigException, OSError, ValueError):
        return "default"
    return str((context or {}).get("context", {}).get("namespace") or "default")
