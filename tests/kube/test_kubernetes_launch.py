"""The kubernetes backend's launch against a real API server: names make a repeated create the
same attempt, an attempt's hosts are created all or none, and environments choose their
backend by tag."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import LaunchError, LaunchSpec
from batchd.backends.kubernetes.backend import KubernetesBackend
from batchd.backends.kubernetes.instance_types import InstanceTypes
from batchd.backends.kubernetes.manifests import PodSettings
from tests.kube.test_kubernetes_backend import (
    WRITE_MODEL,
    _batch_api,
    _core_api,
    _ended,
    _queue,
    _submit,
    _training,
)
from tests.support.kube import KubeTestCluster
from tests.support.process import ServerProcess
from tests.support.s3 import CREDENTIALS, s3_endpoint
from tests.support.server import wait_for

pytestmark = pytest.mark.kubernetes
__all__ = ["s3_endpoint"]

ATTEMPT = "feedfacefeedfacefeedfacefeedface"


def _spec(payload: dict[str, Any]) -> LaunchSpec:
    return LaunchSpec(
        job_id="8f0c3a52-0000-4000-8000-00000000000a",
        job_arn="arn:aws:batch:us-east-1:123456789012:service-job/8f0c",
        attempt_id=ATTEMPT,
        training_job_name="AWSBatchlaunch" + ATTEMPT,
        training_job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/x",
        payload=payload,
        tags={},
        region="us-east-1",
        account_id="123456789012",
        queue="q",
    )


def _payload(**resources: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "launch",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AlgorithmSpecification": {
            "TrainingImage": "test-shell:1",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["sleep", "30"],
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, **resources},
    }


@pytest.fixture
def backend(
    kube_cluster: KubeTestCluster, kube_namespace: str, tmp_path: Path
) -> Iterator[KubernetesBackend]:
    types = tmp_path / "types.json"
    types.write_text('{"ml.bad.large": {"requests": {"cpu": "lots"}}}')
    made = KubernetesBackend(
        kube_cluster.api_client(),
        kube_namespace,
        PodSettings(instance_types=InstanceTypes.load(types)),
        wake=lambda: None,
    )
    yield made
    asyncio.run(made.close())


def _objects(cluster: KubeTestCluster, namespace: str) -> tuple[list[str], list[str]]:
    jobs = _batch_api(cluster).list_namespaced_job(namespace).items
    services = _core_api(cluster).list_namespaced_service(namespace).items
    return sorted(j.metadata.name for j in jobs), sorted(s.metadata.name for s in services)


def test_a_repeated_start_is_the_same_attempt(
    backend: KubernetesBackend, kube_cluster: KubeTestCluster, kube_namespace: str
) -> None:
    spec = _spec(_payload())

    async def twice() -> None:
        await backend.start(spec)
        await backend.start(spec)  # as after a crash between the create and its commit

    asyncio.run(twice())
    jobs, services = _objects(kube_cluster, kube_namespace)
    assert jobs == [f"bd-{ATTEMPT}-algo-1", f"bd-{ATTEMPT}-algo-2"]
    assert services == [f"bd-{ATTEMPT}"]


def test_hosts_are_created_all_or_none(
    backend: KubernetesBackend, kube_cluster: KubeTestCluster, kube_namespace: str
) -> None:
    groups = [
        {"InstanceGroupName": "good", "InstanceType": "ml.m5.large", "InstanceCount": 1},
        {"InstanceGroupName": "bad", "InstanceType": "ml.bad.large", "InstanceCount": 1},
    ]
    payload = _payload()
    payload["ResourceConfig"] = {"InstanceGroups": groups}
    with pytest.raises(LaunchError) as raised:
        asyncio.run(backend.start(_spec(payload)))
    assert raised.value.code == "ValidationException"
    assert "lots" in raised.value.message or "quantities" in raised.value.message
    # Foreground deletion: the Job goes once its pod has.
    wait_for(lambda: _objects(kube_cluster, kube_namespace) == ([], []))


def test_an_unknown_instance_type_is_refused_before_anything_is_made(
    backend: KubernetesBackend, kube_cluster: KubeTestCluster, kube_namespace: str
) -> None:
    with pytest.raises(LaunchError, match=r"ml\.nope\.large is not in the kubernetes backend"):
        asyncio.run(backend.start(_spec(_payload(InstanceType="ml.nope.large"))))
    spec = _spec(_payload())
    no_image = dataclasses.replace(
        spec, payload={**spec.payload, "AlgorithmSpecification": {"ContainerEntrypoint": ["x"]}}
    )
    with pytest.raises(LaunchError, match="TrainingImage is required"):
        asyncio.run(backend.start(no_image))
    assert _objects(kube_cluster, kube_namespace) == ([], [])


def test_the_backend_tag_routes_one_environment_to_the_cluster(
    tmp_path: Path, kube_cluster: KubeTestCluster, kube_namespace: str, s3_endpoint: str
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'batchd.db'}",
        "local",
        "--kubeconfig",
        str(kube_cluster.kubeconfig),
        "--kubernetes-namespace",
        kube_namespace,
        "--s3-endpoint-url",
        s3_endpoint,
    )
    server.env = CREDENTIALS
    server.start()
    try:
        batch = server.client()
        _s3_bucket(s3_endpoint)
        local = _queue(batch)  # untagged: the server's default, local
        batch.create_service_environment(
            serviceEnvironmentName="cluster-env",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": 4, "capacityUnit": "NUM_INSTANCES"}],
            tags={"batchd:backend": "kubernetes"},
        )
        batch.create_job_queue(
            jobQueueName="cluster",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "cluster-env"}],
        )
        on_cluster = _submit(batch, "cluster", _training(WRITE_MODEL), "on-cluster")
        here = _submit(batch, local, _training(WRITE_MODEL), "here")
        assert _ended(batch, on_cluster)["status"] == "SUCCEEDED"
        assert _ended(batch, here)["status"] == "SUCCEEDED"
        labelled = {
            j.metadata.labels["batchd.io/job-id"]
            for j in _batch_api(kube_cluster).list_namespaced_job(kube_namespace).items
        }
        assert labelled == {on_cluster}
    finally:
        server.stop()


def _s3_bucket(endpoint: str) -> None:
    from tests.kube.test_kubernetes_backend import BUCKET, _s3

    client = _s3(endpoint)
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)


def test_an_attempt_no_job_owns_is_deleted_and_a_known_one_kept(
    kube_cluster: KubeTestCluster, kube_namespace: str
) -> None:
    """What runs under batchd's labels without a job of batchd's is found on a sweep and
    deleted; an adopted attempt is left alone."""

    async def scenario() -> None:
        starter = KubernetesBackend(
            kube_cluster.api_client(), kube_namespace, PodSettings(), wake=lambda: None
        )
        orphan, kept = _spec(_payload()), _spec(_payload())
        kept = dataclasses.replace(
            kept, attempt_id="0" * 32, training_job_name="AWSBatchkept" + "0" * 32
        )
        await starter.start(orphan)
        await starter.start(kept)
        await starter.close()
        # A new process that adopts only ``kept``, sweeping at once.
        backend = KubernetesBackend(
            kube_cluster.api_client(),
            kube_namespace,
            PodSettings(),
            wake=lambda: None,
            orphan_sweep_seconds=0.0,
        )
        await backend.adopt(kept, scheduled_at=0, started_at=None)
        await backend.poll([kept.training_job_name])
        await backend.close()

    asyncio.run(scenario())

    def left() -> list[str]:
        return _objects(kube_cluster, kube_namespace)[0]

    wait_for(lambda: left() == ["bd-" + "0" * 32 + "-algo-1", "bd-" + "0" * 32 + "-algo-2"])
