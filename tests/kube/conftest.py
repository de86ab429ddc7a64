"""Fixtures of the cluster's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube.jobs import Kube
from tests.support.kube import KubeTestCluster


@pytest.fixture
def kube(kube_cluster: KubeTestCluster, kube_namespace: str) -> Iterator[Kube]:
    """Plain-dict access to the test's namespace."""
    with kube_cluster.api_client() as api_client:
        yield Kube(api_client, kube_namespace)
