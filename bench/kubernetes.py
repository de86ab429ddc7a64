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
   The systems take turns job by job, so a busy machine's drift falls on all of them alike.
2. N at once into a queue with room for all, with the stand-in kubelet stopped (the pods would
   otherwise run on the same two cores and make the rate the CPU's): Jobs/s = N / (first submit
   until the last attempt's Job exists). Then the kubelet starts again, and the table gives the
   time from then until every training has started and (batchd) every job reached RUNNING.

    .venv/bin/python -m bench.kubernetes [--jobs 20] [--burst 100] [--ticks 1.0,0.1] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
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
    pods_quiet,
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


@dataclass
class System:
    """One side of the comparison: how a job goes in, and how its end is awaited."""

    run: Run
    ns: str
    watch: JobWatch
    start: Callable[[str, dict[str, Any]], str]  # (queue, payload) -> the job-id label
    ended: Callable[[str], bool]  # waits for the job's end; True when it succeeded
    running: Callable[[], int] | None = None  # batchd: jobs that reached RUNNING


def _one_job(system: System, marker: Path, measured: bool) -> None:
    sent = time.time_ns()
    job_id = system.start("one", _payload(marker))
    started = wait_for_marker(marker, TIMEOUT)
    [created] = system.watch.wait_count(JOB_ID, job_id, 1, TIMEOUT)
    system.run.failed += not system.ended(job_id)
    if measured:
        system.run.latency_ms.append((started - sent) / 1e6)
        system.run.to_job_ms.append((created - sent) / 1e6)


def _at_once(setup: Setup, system: System, count: int) -> None:
    """``count`` jobs in while the kubelet is stopped: pods run on this machine's two cores, so
    100 of them starting would slow every create and make the rate the CPU's. The Jobs' pods
    are placed and wait; the kubelet comes back once every Job exists."""
    run = system.run
    paths = [setup.work / f"{id(run):x}-burst-{i}" for i in range(count)]
    setup.cluster.stop_kubelet()
    first = time.time_ns()
    for path in paths:
        system.start("burst", _payload(path))
    run.burst, run.submit_s = count, (time.time_ns() - first) / 1e9
    exist = max(system.watch.wait_count(QUEUE, "burst", count, TIMEOUT))
    run.jobs_exist_s = (exist - first) / 1e9
    setup.cluster.start_kubelet()
    back = time.time_ns()
    if system.running is not None:
        deadline = time.monotonic() + TIMEOUT
        while system.running() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {count} jobs reached RUNNING in {TIMEOUT:.0f} s")
            time.sleep(0.05)
        run.running_s = (time.time_ns() - back) / 1e9
    run.trainings_started_s = max(wait_for_marker(p, TIMEOUT) - back for p in paths) / 1e9
    pods_quiet(setup.cluster, system.ns, TIMEOUT)


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


def batchd_system(setup: Setup, tick: float, stack: contextlib.ExitStack) -> System:
    """A ``batchd serve --backend kubernetes`` of its own, on a namespace of its own."""
    ns = stack.enter_context(namespace(setup.cluster, f"bd-{uuid.uuid4().hex[:8]}"))
    extra = [
        "--kubeconfig", str(setup.cluster.kubeconfig), "--kubernetes-namespace", ns,
        "--s3-endpoint-url", setup.s3_url,
        "--kubernetes-instance-types", str(setup.types_file),
    ]  # fmt: skip
    # This tree's batchd, as the kubelet runs this tree's batchd in the pods.
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    server = batchd_server(
        setup.work,
        setup.work / f"data-{ns}",
        backend="kubernetes",
        tick_seconds=tick,
        extra=extra,
        env={**CREDENTIALS, "PYTHONPATH": path},
    )
    batch = _aws("batch", stack.enter_context(server).url)
    _queues(batch, setup.burst + 1)
    watch = JobWatch(setup.cluster, ns)
    stack.callback(watch.close)

    def submit(queue: str, payload: dict[str, Any]) -> str:
        answer = batch.submit_service_job(
            jobName="bench",
            jobQueue=queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=json.dumps(payload),
        )
        return str(answer["jobId"])

    return System(
        Run(f"batchd (tick {tick:g} s)"),
        ns,
        watch,
        submit,
        lambda job_id: _batchd_ended(batch, job_id),
        lambda: _count_reached_running(batch, "burst"),
    )


def _pod_settings(setup: Setup) -> PodSettings:
    """What batchd's wiring gives its pods with the bench's server options."""
    return PodSettings(
        extra_env={**CREDENTIALS, "AWS_ENDPOINT_URL_S3": setup.s3_url},
        instance_types=InstanceTypes.load(setup.types_file),
    )


def peer_system(setup: Setup, stack: contextlib.ExitStack) -> System:
    """No batchd: the same objects created with the official client."""
    ns = stack.enter_context(namespace(setup.cluster, f"peer-{uuid.uuid4().hex[:8]}"))
    api_client = stack.enter_context(setup.cluster.api_client())
    watch = JobWatch(setup.cluster, ns)
    stack.callback(watch.close)
    settings = _pod_settings(setup)
    return System(
        Run("peer (kubernetes client)"),
        ns,
        watch,
        lambda queue, payload: create_attempt(api_client, ns, payload, settings, queue),
        lambda job_id: finish_attempt(api_client, ns, job_id, TIMEOUT),
    )


def measure(setup: Setup, ticks: list[float]) -> tuple[list[Run], list[float], list[float]]:
    """Round robin one job at a time (so a busy machine's drift falls on every system alike),
    then each system's burst in turn. Returns the runs, and the stage step's and the
    training interpreter's start-up run here directly, once per round."""
    stage, python = [], []
    with contextlib.ExitStack() as stack:
        systems = [peer_system(setup, stack)]
        systems += [batchd_system(setup, tick, stack) for tick in ticks]
        settings = _pod_settings(setup)
        for i in range(setup.jobs + WARMUP):
            for system in systems:
                _one_job(system, setup.work / f"{id(system):x}-one-{i}", i >= WARMUP)
            stage += stage_step_ms(_payload(setup.work / "unused"), settings, setup.work, 1)
            marker = setup.work / f"python-start-{i}"
            began = time.time_ns()
            subprocess.run([sys.executable, "-c", RECORD, str(marker)], check=True)
            python.append((int(marker.read_text()) - began) / 1e6)
        for system in systems:
            _at_once(setup, system, setup.burst)
        return [system.run for system in systems], stage[WARMUP:], python[WARMUP:]


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
        f"{peer.burst} jobs at once, kubelet stopped: dispatched into the cluster "
        "(s; ratio: batchd / peer Jobs/s); then kubelet back -> every training / RUNNING",
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
            [
                "the rest (Job controller, scheduler, kubelet; separate samples)",
                fmt(total - to_job - stage - python),
            ],
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
        runs, stage, python = measure(setup, ticks)
    print(describe_machine())
    _report(runs)
    _breakdown(runs[0], (stage, python))


if __name__ == "__main__":
    main()
