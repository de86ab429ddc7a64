"""Submit -> training start and dispatch rate through batchd's Kubernetes backend, against the
same objects created directly with the official client.

A real v1.20.2 control plane (tests/kube/cluster.py) with one large stand-in node, whose kubelet
runs pods' containers as local processes; moto's server is the S3 the pods' steps talk to.

batchd: a real ``batchd serve --backend kubernetes``, one server per ``--tick-seconds`` value.
peer: no batchd; the exact Service and Jobs batchd would create for an attempt
(``batchd.backends.kubernetes.manifests.attempt_objects``, the same instance types and pod
settings) created with ``kubernetes.client`` in a loop.

1. One at a time: latency = the training container's first act (``time.time_ns()`` written
   to a marker file) minus the moment just before SubmitServiceJob (peer: before the first
   create). The next job goes in once the previous one has finished. ``to Job`` is the same
   start until the Job's ADDED event reached a watch on the namespace.
2. N at once into a queue with room for all: Jobs/s = N / (first submit until the last
   attempt's Job exists); also until every training has started, and (batchd) until every
   job has reached RUNNING.

    .venv/bin/python -m bench.kubernetes [--jobs 20] [--burst 100] [--ticks 1.0,0.1] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from bench.benchlib.kube import (
    JobWatch,
    bench_cluster,
    control_plane_missing,
    create_attempt,
    finish_attempt,
    namespace,
    stage_step_ms,
    wait_for_marker,
)
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import batchd_server, exit_on_sigterm, moto_server, workspace
from bench.benchlib.table import fmt, percentile, print_table, ratio

from batchd.backends.kubernetes.instance_types import InstanceTypes
from batchd.backends.kubernetes.manifests import JOB_ID, QUEUE, PodSettings

RECORD = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(time.time_ns()))"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
# Tiny requests, so the node's room never decides when a pod is placed.
INSTANCE_TYPES = {"ml.m5.large": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
BUCKET = "bench"
WARMUP = 2  # the first jobs of each system warm imports, caches and connections
TIMEOUT = 600.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    name: str
    latency_ms: list[float] = field(default_factory=list)
    to_job_ms: list[float] = field(default_factory=list)
    burst: int = 0
    submit_s: float = 0.0
    jobs_exist_s: float = 0.0
    trainings_started_s: float = 0.0
    running_s: float | None = None
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.burst / self.jobs_exist_s if self.jobs_exist_s else 0.0


def _payload(marker: Path) -> dict[str, Any]:
    return {
        "TrainingJobName": "bench",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AlgorithmSpecification": {
            "TrainingImage": "trainer:bench",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": [sys.executable, "-c", RECORD, str(marker)],
        },
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
    }


def _aws(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _one_at_a_time(
    run: Run,
    watch: JobWatch,
    markers: Path,
    count: int,
    start: Callable[[dict[str, Any]], str],
    ended: Callable[[str], bool],
) -> None:
    """``start`` submits or creates one job and returns its id; ``ended`` waits for its end
    (True: it succeeded), so the next one runs alone."""
    for i in range(count + WARMUP):
        marker = markers / f"{id(run):x}-one-{i}"
        sent = time.time_ns()
        job_id = start(_payload(marker))
        started = wait_for_marker(marker, TIMEOUT)
        [created] = watch.wait_count(JOB_ID, job_id, 1, TIMEOUT)
        run.failed += not ended(job_id)
        if i >= WARMUP:
            run.latency_ms.append((started - sent) / 1e6)
            run.to_job_ms.append((created - sent) / 1e6)


def _at_once(
    run: Run,
    watch: JobWatch,
    markers: Path,
    count: int,
    start: Callable[[dict[str, Any]], str],
    running: Callable[[], int] | None,
) -> None:
    paths = [markers / f"{id(run):x}-burst-{i}" for i in range(count)]
    first = time.time_ns()
    for path in paths:
        start(_payload(path))
    run.burst, run.submit_s = count, (time.time_ns() - first) / 1e9
    run.jobs_exist_s = (max(watch.wait_count(QUEUE, "burst", count, TIMEOUT)) - first) / 1e9
    if running is not None:
        deadline = time.monotonic() + TIMEOUT
        while running() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {count} jobs reached RUNNING in {TIMEOUT:.0f} s")
            time.sleep(0.05)
        run.running_s = (time.time_ns() - first) / 1e9
    run.trainings_started_s = max(wait_for_marker(p, TIMEOUT) - first for p in paths) / 1e9


def _count_reached_running(batch: Any, queue: str) -> int:
    """Jobs of ``queue`` at RUNNING or past it (a short job may be past it at the next look)."""
    total = 0
    for status in ("RUNNING", "SUCCEEDED", "FAILED"):
        pages = batch.get_paginator("list_service_jobs").paginate(jobQueue=queue, jobStatus=status)
        total += sum(len(page["jobSummaryList"]) for page in pages)
    return total


def _batchd_ended(batch: Any, job_id: str) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status = batch.describe_service_job(jobId=job_id)["status"]
        if status in ("SUCCEEDED", "FAILED"):
            return bool(status == "SUCCEEDED")
        time.sleep(0.05)
    raise RuntimeError(f"batchd job {job_id} did not end within {TIMEOUT:.0f} s")


def _queues(batch: Any, capacity: int) -> None:
    batch.create_service_environment(
        serviceEnvironmentName="env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": capacity, "capacityUnit": "NUM_INSTANCES"}],
    )
    for name in ("one", "burst"):
        batch.create_job_queue(
            jobQueueName=name,
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
        )


@dataclass(frozen=True)
class Setup:
    cluster: Any  # tests.kube.cluster.KubeCluster
    work: Path
    s3_url: str
    types_file: Path
    jobs: int
    burst: int


def measure_batchd(setup: Setup, tick: float) -> Run:
    run = Run(f"batchd (tick {tick:g} s)")
    tag = uuid.uuid4().hex[:8]
    with namespace(setup.cluster, f"bd-{tag}") as ns:
        extra = [
            "--kubeconfig", str(setup.cluster.kubeconfig), "--kubernetes-namespace", ns,
            "--s3-endpoint-url", setup.s3_url,
            "--kubernetes-instance-types", str(setup.types_file),
        ]  # fmt: skip
        data = setup.work / f"data-{tag}"
        # This tree's batchd, as the kubelet runs this tree's batchd in the pods.
        path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
        env = {**CREDENTIALS, "PYTHONPATH": path}
        server = batchd_server(
            setup.work, data, backend="kubernetes", tick_seconds=tick, extra=extra, env=env
        )
        with server as running:
            batch = _aws("batch", running.url)
            _queues(batch, setup.burst + 1)
            watch = JobWatch(setup.cluster, ns)
            try:

                def submit(queue: str) -> Callable[[dict[str, Any]], str]:
                    def send(payload: dict[str, Any]) -> str:
                        answer = batch.submit_service_job(
                            jobName="bench",
                            jobQueue=queue,
                            serviceJobType="SAGEMAKER_TRAINING",
                            serviceRequestPayload=json.dumps(payload),
                        )
                        return str(answer["jobId"])

                    return send

                ended = lambda job_id: _batchd_ended(batch, job_id)  # noqa: E731
                _one_at_a_time(run, watch, setup.work, setup.jobs, submit("one"), ended)
                reached = lambda: _count_reached_running(batch, "burst")  # noqa: E731
                _at_once(run, watch, setup.work, setup.burst, submit("burst"), reached)
            finally:
                watch.close()
    return run


def measure_peer(setup: Setup) -> Run:
    run = Run("peer (kubernetes client)")
    settings = PodSettings(
        extra_env={**CREDENTIALS, "AWS_ENDPOINT_URL_S3": setup.s3_url},
        instance_types=InstanceTypes.load(setup.types_file),
    )
    with (
        namespace(setup.cluster, f"peer-{uuid.uuid4().hex[:8]}") as ns,
        setup.cluster.api_client() as api_client,
    ):
        watch = JobWatch(setup.cluster, ns)
        try:

            def create(queue: str) -> Callable[[dict[str, Any]], str]:
                return lambda payload: create_attempt(api_client, ns, payload, settings, queue)

            ended = lambda job_id: finish_attempt(api_client, ns, job_id, TIMEOUT)  # noqa: E731
            _one_at_a_time(run, watch, setup.work, setup.jobs, create("one"), ended)
            _at_once(run, watch, setup.work, setup.burst, create("burst"), None)
        finally:
            watch.close()
    return run


def _report(runs: list[Run]) -> None:
    peer = runs[0]
    rows = []
    for run in runs:
        p50, p95, worst = (percentile(run.latency_ms, p) for p in (50, 95, 100))
        rows.append(
            [
                run.name,
                str(len(run.latency_ms)),
                fmt(statistics.median(run.to_job_ms)),
                fmt(p50),
                fmt(p95),
                fmt(worst),
                ratio(p50, percentile(peer.latency_ms, 50)),
                ratio(p95, percentile(peer.latency_ms, 95)),
                ratio(worst, max(peer.latency_ms)),
                str(run.failed),
            ]
        )
    print_table(
        "Submit -> training process start, one job at a time (ms; ratios: batchd / peer)",
        ["", "jobs", "to Job p50", "p50", "p95", "max", "p50 x", "p95 x", "max x", "failed"],
        rows,
    )
    print_table(
        f"{peer.burst} jobs at once: dispatched into the cluster (s; ratio: batchd / peer Jobs/s)",
        ["", "submit loop", "all Jobs exist", "Jobs/s", "rate x", "all trainings", "all RUNNING"],
        [
            [
                run.name,
                fmt(run.submit_s, 2),
                fmt(run.jobs_exist_s, 2),
                fmt(run.rate, 1),
                ratio(run.rate, peer.rate, 2),
                fmt(run.trainings_started_s, 1),
                fmt(run.running_s, 1) if run.running_s is not None else "n/a",
            ]
            for run in runs
        ],
    )


def _steps(setup: Setup, runs: int) -> tuple[list[float], list[float]]:
    """The stage step and the training's interpreter start-up, run here directly."""
    settings = PodSettings(
        extra_env={**CREDENTIALS, "AWS_ENDPOINT_URL_S3": setup.s3_url},
        instance_types=InstanceTypes.load(setup.types_file),
    )
    stage = stage_step_ms(_payload(setup.work / "unused"), settings, setup.work, runs)
    starts = []
    for i in range(runs):
        marker = setup.work / f"python-start-{i}"
        began = time.time_ns()
        subprocess.run([sys.executable, "-c", RECORD, str(marker)], check=True)
        starts.append((int(marker.read_text()) - began) / 1e6)
    return stage, starts


def _breakdown(peer: Run, steps: tuple[list[float], list[float]]) -> None:
    stage, python = (statistics.median(each) for each in steps)
    to_job, total = statistics.median(peer.to_job_ms), statistics.median(peer.latency_ms)
    print_table(
        "Where the peer's create -> training start goes (ms, medians; steps run here directly)",
        ["", "ms"],
        [
            ["create -> Job in the cluster (apiserver)", fmt(to_job)],
            ["`batchd container stage` alone (init container 1)", fmt(stage)],
            ["training interpreter start -> first act", fmt(python)],
            ["the rest (Job controller, scheduler, kubelet)", fmt(total - to_job - stage - python)],
            ["total", fmt(total)],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="measured one at a time")
    parser.add_argument("--burst", type=int, default=100, help="submitted at once")
    parser.add_argument(
        "--ticks", default="1.0,0.1", help="batchd serve --tick-seconds values, one run each"
    )
    parser.add_argument("--smoke", action="store_true", help="3 jobs, a burst of 10, tick 1.0")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.burst, args.ticks = 3, 10, "1.0"
    missing = control_plane_missing()
    if missing:
        sys.exit(f"bench.kubernetes needs a Kubernetes control plane: {missing}")
    exit_on_sigterm()
    ticks = [float(t) for t in args.ticks.split(",")]
    with workspace() as work, moto_server(work) as moto, bench_cluster(work / "kube") as cluster:
        _aws("s3", moto.url).create_bucket(Bucket=BUCKET)
        types_file = work / "instance-types.json"
        types_file.write_text(json.dumps(INSTANCE_TYPES))
        setup = Setup(cluster, work, moto.url, types_file, args.jobs, args.burst)
        runs = [measure_peer(setup)]
        runs += [measure_batchd(setup, tick) for tick in ticks]
        steps = _steps(setup, 3 if args.smoke else 10)
    print(describe_machine())
    _report(runs)
    _breakdown(runs[0], steps)


if __name__ == "__main__":
    main()
