"""A Kubernetes v1.20.2 control plane for benchmarks (tests/kube/cluster.py), namespaces, a
watch that timestamps each Job's arrival, and the peer: an attempt's objects created directly.

The cluster's stand-in kubelet runs pods' containers as local processes, so a training
container's first act can write ``time.time_ns()`` to an absolute path this process reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchd.backends.base import LaunchSpec
from batchd.backends.kubernetes.manifests import PodSettings, attempt_objects
from batchd.backends.local.payload import parse_request

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from tests.kube.cluster import KubeCluster

__all__ = [
    "JobWatch",
    "bench_cluster",
    "control_plane_missing",
    "create_attempt",
    "finish_attempt",
    "namespace",
    "pods_quiet",
    "stage_step_ms",
    "wait_for_marker",
]

# Room for every pod a run makes, whatever the instance type asks (the bench's own table asks
# for 10m of CPU): the node never limits how fast pods are placed.
REPO = Path(__file__).resolve().parents[2]
BIG_NODE = "node-1:cpu=1000,memory=4000Gi,pods=500"


def control_plane_missing() -> str | None:
    """None when the control plane is built, else what is missing and the command to build it."""
    from tests.kube.cluster import BUILD_COMMAND, missing_binaries

    missing = missing_binaries()
    if not missing:
        return None
    return f"Kubernetes control plane missing ({', '.join(missing)}); run: {BUILD_COMMAND}"


@contextlib.contextmanager
def bench_cluster(root: Path) -> Iterator[KubeCluster]:
    from tests.kube.cluster import KubeCluster

    cluster = KubeCluster(root, nodes=[BIG_NODE])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def namespace(cluster: KubeCluster, name: str) -> Iterator[str]:
    """A fresh namespace; its Jobs and pods are deleted first at the end, which stops their
    processes at once (the namespace controller takes seconds to start)."""
    from kubernetes.client import BatchV1Api, CoreV1Api

    with cluster.api_client() as api_client:
        core = CoreV1Api(api_client)
        core.create_namespace({"metadata": {"name": name}}, _preload_content=False)
        try:
            yield name
        finally:
            BatchV1Api(api_client).delete_collection_namespaced_job(
                name, propagation_policy="Background", _preload_content=False
            )
            core.delete_collection_namespaced_pod(
                name, grace_period_seconds=0, _preload_content=False
            )
            core.delete_namespace(name, _preload_content=False)


class JobWatch:
    """Watches a namespace's Jobs from before anything is created and records, per Job, when
    its ADDED event reached this process (``time.time_ns()``).

    Reading the watch costs per event, not per poll, so it adds nothing to the apiserver's load
    while it waits; the events arrive within milliseconds of the create's commit.
    """

    def __init__(self, cluster: KubeCluster, ns: str) -> None:
        from kubernetes.client import BatchV1Api

        self._client: ApiClient = cluster.api_client()
        self._batch = BatchV1Api(self._client)
        self._ns = ns
        self.added: dict[str, tuple[int, Mapping[str, str]]] = {}
        self._lock = threading.Lock()
        listed = json.loads(self._batch.list_namespaced_job(ns, _preload_content=False).data)
        self._version = str(listed["metadata"]["resourceVersion"])
        self._response: Any = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="job-watch")
        self._thread.start()
        if not self._connected.wait(30):
            raise RuntimeError("the watch on Jobs did not connect within 30 s")

    def _run(self) -> None:
        self._response = self._batch.list_namespaced_job(
            self._ns,
            watch=True,
            resource_version=self._version,
            timeout_seconds=3600,
            _preload_content=False,
        )
        self._connected.set()
        with contextlib.suppress(Exception):  # the response closed under it by close()
            for line in self._response:
                arrived = time.time_ns()
                event = json.loads(line)
                if event.get("type") != "ADDED":
                    continue
                meta = event["object"]["metadata"]
                with self._lock:
                    self.added.setdefault(meta["name"], (arrived, meta.get("labels") or {}))

    def times(self, label: str, value: str) -> list[int]:
        """Arrival times of the Jobs whose ``label`` is ``value``."""
        with self._lock:
            return [t for t, labels in self.added.values() if labels.get(label) == value]

    def wait_count(self, label: str, value: str, count: int, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while len(found := self.times(label, value)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(found)} of {count} Jobs {label}={value} in {timeout} s")
            time.sleep(0.005)
        return found

    def close(self) -> None:
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.shutdown()
            with contextlib.suppress(Exception):
                self._response.release_conn()
        self._client.close()


def pods_quiet(cluster: KubeCluster, ns: str, timeout: float) -> None:
    """Wait until no pod of ``ns`` is pending or running (ended ones may stay)."""
    from kubernetes.client import CoreV1Api

    deadline = time.monotonic() + timeout
    with cluster.api_client() as api_client:
        core = CoreV1Api(api_client)
        while True:
            pods = json.loads(core.list_namespaced_pod(ns, _preload_content=False).data)["items"]
            phases = [(pod.get("status") or {}).get("phase") for pod in pods]
            if all(phase in ("Succeeded", "Failed") for phase in phases):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"pods of {ns} still going after {timeout:.0f} s: {phases}")
            time.sleep(0.2)


def wait_for_marker(marker: Path, timeout: float) -> int:
    """The ``time.time_ns()`` the training container wrote as its first act."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            return int(marker.read_text())
        if time.monotonic() > deadline:
            raise RuntimeError(f"no training started within {timeout:.0f} s ({marker})")
        time.sleep(0.001)


def _launch_spec(payload: Mapping[str, Any], queue: str | None = None) -> LaunchSpec:
    """What batchd's runtime would hand its backend for a new attempt of a job."""
    job_id, attempt_id = str(uuid.uuid4()), uuid.uuid4().hex
    name = f"AWSBatch{payload['TrainingJobName']}{attempt_id}"
    return LaunchSpec(
        job_id=job_id,
        job_arn=f"arn:aws:batch:us-east-1:123456789012:service-job/{job_id}",
        attempt_id=attempt_id,
        training_job_name=name,
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        payload=payload,
        tags={},
        region="us-east-1",
        account_id="123456789012",
        queue=queue,
    )


def create_attempt(
    api_client: ApiClient,
    ns: str,
    payload: Mapping[str, Any],
    settings: PodSettings,
    queue: str,
) -> str:
    """The Service and Jobs batchd would create for one attempt of a job, created directly
    with the official client the same way (unparsed answers); returns the Job's id label."""
    from kubernetes.client import BatchV1Api, CoreV1Api

    spec = _launch_spec(payload, queue)
    job_id, name = spec.job_id, spec.training_job_name
    service, jobs = attempt_objects(spec, parse_request(name, payload), settings)
    CoreV1Api(api_client).create_namespaced_service(ns, service, _preload_content=False)
    for job in jobs:
        BatchV1Api(api_client).create_namespaced_job(ns, job, _preload_content=False)
    return job_id


def finish_attempt(api_client: ApiClient, ns: str, job_id: str, timeout: float) -> bool:
    """Wait until the Job labelled ``job_id`` has ended, then delete its Jobs and Service as
    batchd does at an attempt's end (foreground: the Jobs go after their pods) and wait until
    they are gone, so the next attempt runs alone. True when it succeeded."""
    from kubernetes.client import BatchV1Api, CoreV1Api

    batch, selector = BatchV1Api(api_client), f"batchd.io/job-id={job_id}"
    deadline = time.monotonic() + timeout

    def jobs() -> list[dict[str, Any]]:
        found = batch.list_namespaced_job(ns, label_selector=selector, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(found.data)["items"]
        return items

    while not any((job.get("status") or {}).keys() & {"succeeded", "failed"} for job in jobs()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Job {job_id} did not end within {timeout:.0f} s")
        time.sleep(0.05)
    ended = jobs()
    succeeded = all((job.get("status") or {}).get("succeeded") for job in ended)
    for job in ended:
        meta = job["metadata"]
        batch.delete_namespaced_job(
            meta["name"], ns, propagation_policy="Foreground", _preload_content=False
        )
    attempt = ended[0]["metadata"]["labels"]["batchd.io/attempt-id"]
    CoreV1Api(api_client).delete_namespaced_service(f"bd-{attempt}", ns, _preload_content=False)
    while jobs():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Job {job_id} was not deleted within {timeout:.0f} s")
        time.sleep(0.05)
    return succeeded


def stage_step_ms(
    payload: Mapping[str, Any], settings: PodSettings, work: Path, runs: int
) -> list[float]:
    """Wall time of the pod's first step (``batchd container stage``) run here directly, with
    the env its container gets and the environment the stand-in kubelet adds."""
    spec = _launch_spec(payload)
    name = spec.training_job_name
    _, jobs = attempt_objects(spec, parse_request(name, payload), settings)
    stage = jobs[0]["spec"]["template"]["spec"]["initContainers"][0]
    env = {**os.environ, **{e["name"]: e["value"] for e in stage["env"]}}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO)]))
    times = []
    for i in range(runs):
        base = work / f"stage-{spec.attempt_id}-{i}"
        base.mkdir(parents=True)
        began = time.perf_counter()
        subprocess.run(
            stage["command"],
            env={**env, "SAGEMAKER_BASE_DIR": str(base)},
            cwd=base,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append((time.perf_counter() - began) * 1000)
    return times
