"""The cost of one ``GET /metrics`` scrape with many jobs stored.

Jobs are bulk-loaded into a fresh SQLite database (97% SUCCEEDED, 2% FAILED, 1% RUNNABLE,
spread over 4 queues), a server with those 4 queues starts on it, and scrapes are timed over
HTTP one at a time. The scrape's cost is the GROUP BY (queue, status) over the jobs index,
which reads every index entry but no job document.

    python bench/metrics_scrape.py                # 1M jobs (about two minutes to load)
    python bench/metrics_scrape.py --jobs 10000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import boto3
import httpx
from bench.benchlib.bulk import JobSpec, load_jobs, migrate
from bench.benchlib.procs import batchd_server, workspace

from batchd.domain.status import JobStatus

QUEUES = 4


def _status(i: int) -> JobStatus:
    slot = i % 100
    if slot < 97:
        return JobStatus.SUCCEEDED
    return JobStatus.FAILED if slot < 99 else JobStatus.RUNNABLE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    with workspace() as tmp:
        db_url = f"sqlite:///{tmp / 'db.sqlite'}"
        asyncio.run(migrate(db_url))
        spec = JobSpec(queue=lambda i: f"q{i % QUEUES}", status=_status)
        loaded = load_jobs(db_url, args.jobs, spec)
        print(f"loaded {args.jobs} jobs in {loaded:.0f}s")
        with batchd_server(tmp, tmp / "data", db_url) as server:
            url = f"http://127.0.0.1:{server.port}"
            batch = boto3.client(
                "batch",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
            )
            batch.create_service_environment(
                serviceEnvironmentName="env",
                serviceEnvironmentType="SAGEMAKER_TRAINING",
                capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
            )
            for q in range(QUEUES):
                batch.create_job_queue(
                    jobQueueName=f"q{q}",
                    jobQueueType="SAGEMAKER_TRAINING",
                    state="DISABLED",
                    priority=q + 1,
                    serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
                )
            times = []
            with httpx.Client() as client:
                body = client.get(f"{url}/metrics").text
                for _ in range(args.scrapes):
                    started = time.perf_counter()
                    client.get(f"{url}/metrics").raise_for_status()
                    times.append(time.perf_counter() - started)
            times.sort()
            print(
                f"{args.jobs} jobs: scrape p50 {statistics.median(times) * 1000:.0f} ms, "
                f"max {times[-1] * 1000:.0f} ms over {args.scrapes}; {len(body)} bytes"
            )
            print("\n".join(line for line in body.splitlines() if "q0" in line or "env" in line))


if __name__ == "__main__":
    main()
