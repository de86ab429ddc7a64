"""Fixtures for tests against a real Kubernetes control plane (tests/kube/cluster.py).

``kube_cluster`` (session): one cluster per test session, whose stand-in kubelet maps the
images ``busybox*`` and ``test-shell*`` to ``sh -c`` for containers given only ``args``.
``kube_namespace`` (function): a fresh namespace, deleted with everything in it afterwards.
Where the control plane is not built they skip with the command that builds it; under CI
(env CI set) they fail instead.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from tests.kube.cluster import KubeCluster

__all__ = ["KubeTestCluster", "kube_cluster", "kube_namespace"]

IMAGE_COMMANDS = ("busybox*=sh -c", "test-shell*=sh -c")


@dataclass(frozen=True)
class KubeTestCluster:
    kubeconfig: Path
    api_client: Callable[[], ApiClient]
    pods_dir: Path
    cluster: KubeCluster


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    from tests.kube.cluster import BUILD_COMMAND, KubeCluster, missing_binaries

    missing = missing_binaries()
    if missing:
        message = f"Kubernetes control plane missing ({', '.join(missing)}); run: {BUILD_COMMAND}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must test the Kubernetes backend")
        pytest.skip(message)
    cluster = KubeCluster(tmp_path_factory.mktemp("kube"), image_commands=IMAGE_COMMANDS)
    cluster.start()
    try:
        yield KubeTestCluster(cluster.kubeconfig, cluster.api_client, cluster.pods_dir, cluster)
    finally:
        cluster.stop()


@pytest.fixture
def kube_namespace(kube_cluster: KubeTestCluster) -> Iterator[str]:
    from kubernetes.client import BatchV1Api, CoreV1Api, V1Namespace

    kube_cluster.cluster.check()  # a dead component is named here, not left to time out
    name = f"t-{uuid.uuid4().hex[:12]}"
    with kube_cluster.api_client() as api_client:
        core = CoreV1Api(api_client)
        core.create_namespace(V1Namespace.model_validate({"metadata": {"name": name}}))
        try:
            yield name
        finally:
            # The namespace controller takes seconds to start emptying a namespace; deleting
            # its Jobs and pods first stops their processes at once.
            BatchV1Api(api_client).delete_collection_namespaced_job(
                name, propagation_policy="Background"
            )
            core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
            core.delete_namespace(name)
            # Wait for the pods, so one test's processes never overlap the next test.
            deadline = time.monotonic() + 30
            while core.list_namespaced_pod(name).items and time.monotonic() < deadline:
                time.sleep(0.1)
