"""Page render times with many jobs stored: python -m tests.dashboard.render_times [COUNT]

Bulk-loads COUNT jobs (default 1,000,000; bench/benchlib's loader, batchd's own rows) into
one queue of a fresh SQLite database: 1% RUNNABLE (their environment is disabled, so they
stay), 2% FAILED, the rest SUCCEEDED. Then times each dashboard page over real HTTP.
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from batchd.domain.status import JobStatus
from tests.dashboard.helpers import HTML
from tests.support.builders import environment
from tests.support.server import serve, settings_for

ROUNDS = 20
# Imported by name: bench/ is not type-checked as part of the tests.
bulk = importlib.import_module("bench.benchlib.bulk")
JobSpec, job_id, load_jobs, migrate = bulk.JobSpec, bulk.job_id, bulk.load_jobs, bulk.migrate


def _status(i: int) -> JobStatus:
    if i % 100 == 0:
        return JobStatus.RUNNABLE
    if i % 50 == 1:
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    keep = sys.argv[2] if len(sys.argv) > 2 else None  # a directory: load once, time again
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        url = f"sqlite:///{tmp}/batchd.db"
        settings = settings_for(url, Path(tmp) / "data")
        if not (Path(tmp) / "batchd.db").exists():
            _load(settings, url, count)
        _time(settings, count)


def _load(settings: Any, url: str, count: int) -> None:
    with serve(settings) as server:
        batch = server.client()
        environment(batch, "bench-env", state="DISABLED")
        batch.create_job_queue(
            jobQueueName="bench",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "bench-env"}],
        )
    asyncio.run(migrate(url))
    load_s = load_jobs(url, count, JobSpec(queue=lambda _: "bench", status=_status))
    print(f"{count:,} jobs loaded in {load_s:.0f}s", file=sys.stderr)


def _time(settings: Any, count: int) -> None:
    started = time.perf_counter()
    with serve(settings) as server:
        print(f"server up in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        deep = f"{1_700_000_000_000 + count // 2}~{job_id(count // 2)}"
        pages = {
            "overview /": "/",
            "queue /queues/bench": "/queues/bench",
            "jobs /jobs": "/jobs",
            "jobs, RUNNABLE": "/jobs?queue=bench&status=RUNNABLE",
            "jobs, name prefix": "/jobs?name=bench-99999",
            "jobs, page at the middle": f"/jobs?queue=bench&cursor={deep}",
            "jobs, time window": "/jobs?since=2023-11-14T22:20&until=2023-11-14T22:25",
            "job, RUNNABLE deep in queue": f"/jobs/{job_id(count - count % 100)}",
            "job, FAILED": f"/jobs/{job_id(51)}",
        }
        with httpx.Client(base_url=server.url, headers=HTML, timeout=120) as client:
            print("| page | median ms | p90 ms | bytes |\n|---|---:|---:|---:|")
            for name, path in pages.items():
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.text[:300])
                times = []
                for _ in range(ROUNDS):
                    begun = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - begun) * 1000)
                times.sort()
                p90 = times[int(len(times) * 0.9) - 1]
                print(
                    f"| {name} | {statistics.median(times):.1f} | {p90:.1f} "
                    f"| {len(answer.content):,} |"
                )


if __name__ == "__main__":
    main()
