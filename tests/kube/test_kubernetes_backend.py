"""batchd on a real Kubernetes API server: jobs submitted with boto3 run as pods.

The control plane is v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, etcd);
the stand-in kubelet runs each pod's containers as local processes, so batchd's own staging
and packing steps and the training code really run (see tests/kube/kubelet.py).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.kube import KubeTestCluster as KubeCluster
from tests.support.process import ServerProcess
from tests.support.s3 import s3_endpoint
from tests.support.server import CREDENTIALS, payload, wait_for

pytestmark = pytest.mark.kubernetes
__all__ = ["s3_endpoint"]

BUCKET = "k8s-bucket"


def _batch_api(cluster: KubeCluster) -> Any:
    from kubernetes.client import BatchV1Api

    return BatchV1Api(cluster.api_client())


def _core_api(cluster: KubeCluster) -> Any:
    from kubernetes.client import CoreV1Api

    return CoreV1Api(cluster.api_client())


def _processes_running(marker: str) -> list[int]:
    """Pids of this machine's processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def server(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str, s3_endpoint: str
) -> Iterator[ServerProcess]:
    bucket = _s3(s3_endpoint)
    if BUCKET not in [b["Name"] for b in bucket.list_buckets()["Buckets"]]:
        bucket.create_bucket(Bucket=BUCKET)
    proc = ServerProcess(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'batchd.db'}",
        "kubernetes",
        "--kubeconfig",
        str(kube_cluster.kubeconfig),
        "--kubernetes-namespace",
        kube_namespace,
        "--s3-endpoint-url",
        s3_endpoint,
        "--kubernetes-unschedulable-seconds",
        "4",
        "--stop-grace-seconds",
        "2",
    )
    proc.env = CREDENTIALS
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _queue(batch: Any, max_instances: int = 8) -> str:
    batch.create_service_environment(
        serviceEnvironmentName="k8s-env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": max_instances, "capacityUnit": "NUM_INSTANCES"}],
    )
    batch.create_job_queue(
        jobQueueName="k8s",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "k8s-env"}],
    )
    return "k8s"


def _training(
    code: str, instances: int = 1, instance_type: str = "ml.m5.large", **extra: Any
) -> str:
    """A payload whose training is ``code``, run by this interpreter in the pod."""
    return payload(
        instances,
        instance_type,
        AlgorithmSpecification={
            "TrainingImage": "trainer:test",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": [sys.executable, "-c", textwrap.dedent(code)],
        },
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        **extra,
    )


WRITE_MODEL = """
    import json, os
    base = os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
    host = os.environ["CURRENT_HOST"]
    config = json.load(open(os.path.join(base, "input/config/resourceconfig.json")))
    print("training on", host, "of", ",".join(config["hosts"]), flush=True)
    open(os.path.join(base, "model", "model.txt"), "w").write("weights of " + host)
"""


def _submit(batch: Any, queue: str, body: str, name: str = "job", **extra: Any) -> str:
    return str(
        batch.submit_service_job(
            jobName=name,
            jobQueue=queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=body,
            **extra,
        )["jobId"]
    )


def _ended(batch: Any, job_id: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found: dict[str, Any] = batch.describe_service_job(jobId=job_id)
        return found if found["status"] in ("SUCCEEDED", "FAILED") else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.2)
    return result


def _model(s3_endpoint: str, training_job_name: str) -> dict[str, bytes]:
    key = f"out/{training_job_name}/output/model.tar.gz"
    data = _s3(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _training_job(job: dict[str, Any]) -> str:
    arn = job["latestAttempt"]["serviceResourceId"]["value"]
    return str(arn.rsplit("/", 1)[-1])


def test_one_host_job_runs_as_a_pod_and_uploads_its_model(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str, s3_endpoint: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    job_id = _submit(batch, queue, _training(WRITE_MODEL))
    job = _ended(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["statusReason"] == "Received status from SageMaker: Training job completed"
    assert _model(s3_endpoint, _training_job(job)) == {"model.txt": b"weights of algo-1"}
    jobs = (
        _batch_api(kube_cluster)
        .list_namespaced_job(kube_namespace, label_selector=f"batchd.io/job-id={job_id}")
        .items
    )
    assert [j.metadata.labels["batchd.io/host"] for j in jobs] == ["algo-1"]
    assert jobs[0].metadata.labels["batchd.io/queue"] == queue
    logs = subprocess.run(
        [sys.executable, "-m", "batchd.cli", "logs", job_id, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**CREDENTIALS, "PATH": "/usr/bin:/bin"},
    )
    assert "training on algo-1 of algo-1" in logs.stdout, logs.stderr


def test_three_hosts_are_one_gang_with_sagemaker_host_names(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str, s3_endpoint: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    job_id = _submit(batch, queue, _training(WRITE_MODEL, instances=3))
    job = _ended(batch, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    pods = (
        _core_api(kube_cluster)
        .list_namespaced_pod(kube_namespace, label_selector=f"batchd.io/job-id={job_id}")
        .items
    )
    assert sorted((p.spec.hostname, p.spec.subdomain) for p in pods) == [
        (f"algo-{i}", pods[0].spec.subdomain) for i in (1, 2, 3)
    ]
    service = _core_api(kube_cluster).read_namespaced_service(
        pods[0].spec.subdomain, kube_namespace
    )
    assert service.spec.cluster_ip == "None"
    # SageMaker uploads the model from the first host.
    assert _model(s3_endpoint, _training_job(job)) == {"model.txt": b"weights of algo-1"}
    for pod in pods:
        log = _core_api(kube_cluster).read_namespaced_pod_log(
            pod.metadata.name, kube_namespace, container="training"
        )
        assert f"training on {pod.spec.hostname} of algo-1,algo-2,algo-3" in log


def test_a_failed_training_reports_its_failure_file(server: ServerProcess) -> None:
    batch = server.client()
    queue = _queue(batch)
    code = """
        import os, sys
        base = os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
        failure = open(os.path.join(base, "output", "failure"), "w")
        failure.write("ValueError: learning rate is negative")
        failure.close()
        sys.exit(3)
    """
    job = _ended(batch, _submit(batch, queue, _training(code)))
    reason = "Received status from SageMaker: ValueError: learning rate is negative"
    assert (job["status"], job["statusReason"]) == ("FAILED", reason)
    assert job["attempts"][0]["statusReason"] == reason
    silent = _ended(
        batch,
        _submit(batch, queue, _training("import sys; print('oops', file=sys.stderr); sys.exit(4)")),
    )
    assert (
        silent["statusReason"]
        == "Received status from SageMaker: AlgorithmError: oops, exit code: 4"
    )


def _live_pods(kube_cluster: KubeCluster, namespace: str) -> list[Any]:
    pods = _core_api(kube_cluster).list_namespaced_pod(namespace).items
    return [p for p in pods if p.status.phase not in ("Succeeded", "Failed")]


def test_terminate_while_running_deletes_the_pods(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    code = "import time; print('up', flush=True); time.sleep(300)  # terminate-me"
    job_id = _submit(batch, queue, _training(code, instances=2))
    wait_for(lambda: batch.describe_service_job(jobId=job_id)["status"] == "RUNNING", timeout=60)
    assert len(_live_pods(kube_cluster, kube_namespace)) == 2
    batch.terminate_service_job(jobId=job_id, reason="no longer needed")
    job = _ended(batch, job_id, timeout=60)
    assert (job["status"], job["statusReason"]) == ("FAILED", "no longer needed")
    assert _core_api(kube_cluster).list_namespaced_pod(kube_namespace).items == []
    assert _batch_api(kube_cluster).list_namespaced_job(kube_namespace).items == []
    assert _processes_running("terminate-me") == []


def test_max_runtime_ends_the_attempt(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    body = _training("import time; time.sleep(300)", StoppingCondition={"MaxRuntimeInSeconds": 3})
    job = _ended(batch, _submit(batch, queue, body), timeout=60)
    assert job["status"] == "FAILED"
    assert "MaxRuntimeExceeded" in job["statusReason"]
    wait_for(lambda: not _live_pods(kube_cluster, kube_namespace), timeout=30)


def test_capacity_is_never_exceeded_with_more_jobs_than_room(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    batch = server.client()
    queue = _queue(batch, max_instances=2)
    ids = [
        _submit(batch, queue, _training("import time; time.sleep(1.5)"), f"j{i}") for i in range(6)
    ]
    most = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        most = max(most, len(_live_pods(kube_cluster, kube_namespace)))
        states = [batch.describe_service_job(jobId=j)["status"] for j in ids]
        if all(s == "SUCCEEDED" for s in states):
            break
        time.sleep(0.1)
    assert states == ["SUCCEEDED"] * 6
    assert 1 <= most <= 2


def test_an_unschedulable_pod_shows_why_and_is_requeued(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    # 8 GPUs: more than any node of the test cluster has.
    job_id = _submit(batch, queue, _training("print('never')", instance_type="ml.p3.16xlarge"))

    def waiting_reason() -> str | None:
        job = batch.describe_service_job(jobId=job_id)
        return job.get("statusReason") if job["status"] == "SCHEDULED" else None

    reason = wait_for(waiting_reason, timeout=60, interval=0.1)
    assert "Insufficient nvidia.com/gpu" in reason

    # After --kubernetes-unschedulable-seconds it is a capacity error: back in the queue with
    # no attempt used, and dispatched again as a new attempt (new objects in the cluster).
    seen: set[str] = set()

    def requeued() -> bool:
        job = batch.describe_service_job(jobId=job_id)
        assert not job.get("attempts"), job["attempts"]
        for k8s_job in (
            _batch_api(kube_cluster)
            .list_namespaced_job(kube_namespace, label_selector=f"batchd.io/job-id={job_id}")
            .items
        ):
            seen.add(k8s_job.metadata.labels["batchd.io/attempt-id"])
        capacity = str(job.get("statusReason", "")).startswith("CAPACITY:")
        return len(seen) >= 2 or (job["status"] == "RUNNABLE" and capacity)

    wait_for(requeued, timeout=60, interval=0.1)
    batch.terminate_service_job(jobId=job_id, reason="gave up")
    assert _ended(batch, job_id)["status"] == "FAILED"


def test_a_restart_adopts_running_attempts_without_duplicates(
    server: ServerProcess, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    batch = server.client()
    queue = _queue(batch)
    ids = [
        _submit(batch, queue, _training("import time; time.sleep(6)"), f"r{i}") for i in range(3)
    ]
    wait_for(
        lambda: all(batch.describe_service_job(jobId=j)["status"] == "RUNNING" for j in ids),
        timeout=60,
    )
    server.kill()
    server.start()
    batch = server.client(retries=3)
    for job_id in ids:
        job = _ended(batch, job_id)
        assert job["status"] == "SUCCEEDED", job.get("statusReason")
        assert len(job["attempts"]) == 1
        k8s_jobs = (
            _batch_api(kube_cluster)
            .list_namespaced_job(kube_namespace, label_selector=f"batchd.io/job-id={job_id}")
            .items
        )
        assert len(k8s_jobs) == 1  # the same attempt, not a second one
    assert _live_pods(kube_cluster, kube_namespace) == []
