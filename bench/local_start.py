"""Submit -> training process start, through a real server on the local backend.

Each job's entry point records ``time.time_ns()`` as its first act; the latency is that
moment minus the moment just before SubmitServiceJob was sent. It covers the whole path a
user waits through: HTTP, the commit, admission, planning, dispatch, the per-attempt
SageMaker tree and the process spawn. Jobs are submitted one at a time so each is measured
alone. No peer: moto runs nothing.

    .venv/bin/python -m bench.local_start [--jobs 20] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import batchd_server, workspace
from bench.benchlib.table import percentile, print_table

RECORD = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(time.time_ns()))"


def _client(url: str) -> Any:
    return boto3.client(
        "batch",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def _payload(marker: Path) -> str:
    return json.dumps(
        {
            "TrainingJobName": "start",
            "RoleArn": "arn:aws:iam::123456789012:role/R",
            "AlgorithmSpecification": {
                "TrainingInputMode": "File",
                "ContainerEntrypoint": [sys.executable, "-c", RECORD, str(marker)],
            },
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "OutputDataConfig": {"S3OutputPath": "s3://bench/out"},
        }
    )


def measure(jobs: int) -> list[float]:
    with workspace() as work:
        server = batchd_server(work, work / "data", backend="local", tick_seconds=1.0)
        with server as running:
            batch = _client(running.url)
            batch.create_service_environment(
                serviceEnvironmentName="env",
                serviceEnvironmentType="SAGEMAKER_TRAINING",
                capacityLimits=[{"maxCapacity": 4, "capacityUnit": "NUM_INSTANCES"}],
            )
            batch.create_job_queue(
                jobQueueName="q",
                jobQueueType="SAGEMAKER_TRAINING",
                priority=1,
                serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
            )
            latencies = []
            for i in range(jobs + 2):  # the first two warm up imports and caches
                marker = work / f"started-{i}"
                sent = time.time_ns()
                batch.submit_service_job(
                    jobName=f"start{i}",
                    jobQueue="q",
                    serviceJobType="SAGEMAKER_TRAINING",
                    serviceRequestPayload=_payload(marker),
                )
                deadline = time.monotonic() + 30
                while not marker.exists() or not marker.read_text():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"job {i} did not start within 30 s")
                    time.sleep(0.001)
                if i >= 2:
                    latencies.append((int(marker.read_text()) - sent) / 1e6)
            return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="3 jobs")
    args = parser.parse_args()
    latencies = measure(3 if args.smoke else args.jobs)
    print(describe_machine())
    print_table(
        "Submit -> training process start, local backend (ms)",
        ["jobs", "median", "p90", "min", "max"],
        [
            [
                str(len(latencies)),
                f"{statistics.median(latencies):.1f}",
                f"{percentile(latencies, 90):.1f}",
                f"{min(latencies):.1f}",
                f"{max(latencies):.1f}",
            ]
        ],
    )


if __name__ == "__main__":
    main()
