"""Server memory (RSS, from /proc/<pid>/status) with many jobs stored, and with many RUNNABLE
jobs held in memory by the scheduler.

Jobs are bulk-loaded into a fresh SQLite database through batchd's own schema, then the
server starts on it (rebuilding the runtime's index from the active jobs) and serves a few
reads before RSS is read. Peer: moto's server after SubmitJob of --moto-jobs jobs through its
API (bulk loading moto is not possible); its per-job growth is extrapolated to the same size
and labelled so.

    python bench/memory.py                  # 1M jobs, twice (about 6 minutes)
    python bench/memory.py --size 100000
    python bench/memory.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.benchlib.bulk import JobSpec, job_id, load_jobs, migrate
from bench.benchlib.latency import time_requests
from bench.benchlib.loadgen import run_load
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import (
    Server,
    batchd_server,
    exit_on_sigterm,
    moto_server,
    proc_memory,
    workspace,
)
from bench.benchlib.resources import batchd_queue, moto_queue
from bench.benchlib.signed import capture
from bench.benchlib.table import fmt, print_table, ratio

from batchd.domain.status import JobStatus

MB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    rss: int
    peak: int


def _settled(server: Server, settle_s: float) -> Memory:
    time.sleep(settle_s)
    found = proc_memory(server.pid)
    return Memory(found["VmRSS"], found.get("VmHWM", found["VmRSS"]))


def _describe(jid: str, client: Any) -> Any:
    return client.describe_service_job(jobId=jid)


def _touch(server: Server, size: int) -> None:
    """A few reads, so the numbers include what serving requests keeps."""
    step = max(1, size // 200)
    describes = [
        capture(server.url, functools.partial(_describe, job_id(i))).raw
        for i in range(1, size + 1, step)
    ]
    page = capture(
        server.url,
        lambda c: c.list_service_jobs(jobQueue="bench", jobStatus="SUCCEEDED", maxResults=100),
    ).raw
    if describes and size > 0:
        time_requests(server.port, describes, warmup=0)
    time_requests(server.port, [page] * 20, warmup=0)


def measure_batchd(work: Path, size: int, status: JobStatus | None, settle_s: float) -> Memory:
    data = work / f"mem-{status.value if status else 'empty'}"
    url = f"sqlite:///{data / 'batchd.db'}"
    with batchd_server(work, data) as server:
        batchd_queue(server.url, "bench", state="DISABLED")
        if status is None:
            _touch(server, 0)
            return _settled(server, settle_s)
    asyncio.run(migrate(url))
    load_jobs(url, size, JobSpec(queue=lambda _: "bench", status=lambda _: status))
    try:
        with batchd_server(work, data, timeout=1200) as server:
            _touch(server, size)
            return _settled(server, settle_s)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def measure_moto(work: Path, jobs: int, settle_s: float) -> tuple[Memory, Memory]:
    with moto_server(work) as server:
        queue, definition = moto_queue(server.url)
        empty = _settled(server, settle_s)
        signed = capture(
            server.url,
            lambda c: c.submit_job(jobName="bench", jobQueue=queue, jobDefinition=definition),
        )
        run_load(
            server.port, [signed.raw], connections=16, warmup=0, duration=3600, max_requests=jobs
        )
        return empty, _settled(server, settle_s + 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--moto-jobs", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    args = parser.parse_args()
    exit_on_sigterm()
    size, moto_jobs, settle = args.size, args.moto_jobs, args.settle
    if args.smoke:
        size, moto_jobs, settle = 2000, 200, 0.2
    print(describe_machine())
    with workspace() as work:
        moto_empty, moto_full = measure_moto(work, moto_jobs, settle)
        empty = measure_batchd(work, 0, None, settle)
        stored = measure_batchd(work, size, JobStatus.SUCCEEDED, settle)
        runnable = measure_batchd(work, size, JobStatus.RUNNABLE, settle)
    per_job = (moto_full.rss - moto_empty.rss) / moto_jobs
    moto_at_size = moto_empty.rss + per_job * size
    rows = [
        [
            "empty server",
            fmt(moto_empty.rss / MB),
            fmt(empty.rss / MB),
            fmt(empty.peak / MB),
            ratio(moto_empty.rss, empty.rss),
            "",
        ],
        [f"moto, {moto_jobs:,} jobs (measured)", fmt(moto_full.rss / MB), "", "", "", ""],
        [
            f"{size:,} jobs stored (SUCCEEDED)",
            fmt(moto_at_size / MB) + " (extrap.)",
            fmt(stored.rss / MB),
            fmt(stored.peak / MB),
            ratio(moto_at_size, stored.rss),
            "< 300",
        ],
        [
            f"{size:,} jobs RUNNABLE (held by the scheduler)",
            fmt(moto_at_size / MB) + " (extrap.)",
            fmt(runnable.rss / MB),
            fmt(runnable.peak / MB),
            ratio(moto_at_size, runnable.rss),
            "",
        ],
    ]
    print_table(
        "Server memory, MB (VmRSS after start and a few reads; peak = VmHWM)",
        ["case", "moto RSS", "batchd RSS", "batchd peak", "moto/batchd", "goal"],
        rows,
    )
    print(f"moto grows {per_job / 1024:.1f} KB per job (measured over {moto_jobs:,} SubmitJob)")
    print("goal: batchd RSS < 300 MB with 1M jobs stored")


if __name__ == "__main__":
    main()
