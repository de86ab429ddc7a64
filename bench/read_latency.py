"""DescribeServiceJob and a 100-item ListServiceJobs page, p50/p99, with many jobs stored.

For each size, jobs are bulk-loaded into a fresh SQLite database through batchd's own schema
(97% SUCCEEDED, 2% FAILED, 1% RUNNABLE, one queue), then the server starts on it and is
measured over HTTP: one request at a time on a keep-alive connection, so each time is the
server's time plus a fixed client cost. That cost (the floor) is measured with the same
client against a fixed-response server returning the same bytes. Peer: moto's DescribeJobs
and ListJobs after SubmitJob through its API (bulk loading moto is not possible; its size is
--moto-jobs).

    python bench/read_latency.py                       # 10k, 100k and 1M (about 10 minutes)
    python bench/read_latency.py --sizes 10000,100000  # skip the 1M load
    python bench/read_latency.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import shutil
import time
from collections.abc import Callable, Sequence
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
    trivial_server,
    workspace,
)
from bench.benchlib.resources import batchd_queue, moto_queue
from bench.benchlib.signed import batch_client, capture
from bench.benchlib.table import fmt, percentile, print_table, ratio

from batchd.domain.status import JobStatus

PLACEHOLDER = "00000000-0000-4000-8000-7e57c11e0000"  # a job id's length


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    describes: int
    pages: int
    moto_jobs: int


@dataclass
class Timings:
    describe: list[float]
    page: list[float]
    describe_body: bytes = b""
    page_body: bytes = b""


def _status(i: int) -> JobStatus:
    if i % 100 == 0:
        return JobStatus.RUNNABLE
    if i % 50 == 1:
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


def _describes(
    server: Server, ids: Sequence[str], count: int, call: Callable[[Any, str], Any]
) -> list[bytes]:
    template = capture(server.url, lambda c: call(c, PLACEHOLDER)).raw
    rng = random.Random(7)
    return [
        template.replace(PLACEHOLDER.encode(), rng.choice(ids).encode(), 1) for _ in range(count)
    ]


def _pages(server: Server, pages: int, list_call: Callable[[Any, str | None], Any]) -> list[bytes]:
    """Signed requests for consecutive pages (tokens found by walking with boto3 first)."""
    client = batch_client(server.url)
    tokens: list[str | None] = [None]
    for _ in range(pages - 1):
        token = list_call(client, tokens[-1]).get("nextToken")
        tokens.append(token)  # None again: back to the first page
    return [
        capture(server.url, functools.partial(_page_of, list_call, token)).raw for token in tokens
    ]


def _page_of(list_call: Callable[[Any, str | None], Any], token: str | None, client: Any) -> Any:
    return list_call(client, token)


def _batchd_list(client: Any, token: str | None) -> Any:
    extra = {"nextToken": token} if token else {}
    return client.list_service_jobs(
        jobQueue="bench", jobStatus="SUCCEEDED", maxResults=100, **extra
    )


def _batchd_describe(client: Any, jid: str) -> Any:
    return client.describe_service_job(jobId=jid)


def measure_batchd(work: Path, size: int, plan: Plan) -> tuple[Timings, float, float]:
    data = work / f"data-{size}"
    url = f"sqlite:///{data / 'batchd.db'}"
    with batchd_server(work, data) as server:  # creates the schema and the queue
        batchd_queue(server.url, "bench", state="DISABLED")
    asyncio.run(migrate(url))
    spec = JobSpec(queue=lambda _: "bench", status=_status)
    load_s = load_jobs(url, size, spec)
    started = time.perf_counter()
    try:
        with batchd_server(work, data, timeout=900) as server:
            start_s = time.perf_counter() - started
            ids = [job_id(i) for i in range(1, size + 1)]
            describes = _describes(server, ids, plan.describes, _batchd_describe)
            pages = _pages(server, plan.pages, _batchd_list)
            timings = Timings(
                time_requests(server.port, describes), time_requests(server.port, pages)
            )
            client = batch_client(server.url)
            timings.describe_body = _body(client.describe_service_job(jobId=ids[-2]))
            timings.page_body = _body(_batchd_list(client, None))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return timings, load_s, start_s


def _body(response: dict[str, Any]) -> bytes:
    import json

    response.pop("ResponseMetadata", None)
    return json.dumps(response, default=str).encode()


def measure_floor(work: Path, sample: Timings, plan: Plan) -> Timings:
    responses = {
        "/v1/describeservicejob": sample.describe_body,
        "/v1/listservicejobs": sample.page_body,
    }
    with trivial_server(work, responses) as server:
        describes = _describes(server, [PLACEHOLDER], plan.describes, _batchd_describe)
        page = capture(server.url, lambda c: _batchd_list(c, None)).raw
        return Timings(
            time_requests(server.port, describes), time_requests(server.port, [page] * plan.pages)
        )


def measure_moto(work: Path, plan: Plan) -> tuple[Timings, float]:
    with moto_server(work) as server:
        queue, definition = moto_queue(server.url)
        signed = capture(
            server.url,
            lambda c: c.submit_job(jobName="bench", jobQueue=queue, jobDefinition=definition),
        )
        started = time.perf_counter()
        run_load(
            server.port,
            [signed.raw],
            connections=16,
            warmup=0,
            duration=3600,
            max_requests=plan.moto_jobs,
        )
        client = batch_client(server.url)
        ids: list[str] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            ids = [
                j["jobId"]
                for j in client.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
            ]
            if len(ids) >= plan.moto_jobs:
                break
            time.sleep(0.5)
        load_s = time.perf_counter() - started

        def moto_list(c: Any, token: str | None) -> Any:
            extra = {"nextToken": token} if token else {}
            return c.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED", maxResults=100, **extra)

        describes = _describes(server, ids, plan.describes, lambda c, j: c.describe_jobs(jobs=[j]))
        pages = _pages(server, plan.pages, moto_list)
        return Timings(
            time_requests(server.port, describes), time_requests(server.port, pages)
        ), load_s


def _cells(values: list[float] | None) -> list[str]:
    if values is None:
        return ["n/a", "n/a"]
    return [fmt(percentile(values, 50), 2), fmt(percentile(values, 99), 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated job counts"
    )
    parser.add_argument("--describes", type=int, default=3000)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--moto-jobs", type=int, default=10000)
    args = parser.parse_args()
    exit_on_sigterm()
    plan = Plan(
        tuple(int(s) for s in args.sizes.split(",")), args.describes, args.pages, args.moto_jobs
    )
    if args.smoke:
        plan = Plan((500,), 100, 20, 500)
    print(describe_machine())
    print(
        f"{plan.describes} DescribeServiceJob (random ids) and {plan.pages} ListServiceJobs pages "
        "(100 SUCCEEDED jobs, walking nextToken) per size, sequential on one keep-alive connection"
    )
    rows: list[list[str]] = []
    notes: list[str] = []
    with workspace() as work:
        moto, moto_load = measure_moto(work, plan)
        notes.append(f"moto: {plan.moto_jobs:,} jobs submitted through its API in {moto_load:.0f}s")
        floor: Timings | None = None
        for size in plan.sizes:
            timings, load_s, start_s = measure_batchd(work, size, plan)
            notes.append(
                f"batchd {size:,} jobs: bulk load {load_s:.0f}s, server start {start_s:.1f}s"
            )
            floor = floor or measure_floor(work, timings, plan)
            peer = moto if size == plan.moto_jobs else None
            for op, goal in (
                ("DescribeServiceJob", "p99 < 2"),
                ("ListServiceJobs page", "p99 < 10"),
            ):
                ours = timings.describe if op.startswith("Describe") else timings.page
                theirs = (
                    (peer.describe if op.startswith("Describe") else peer.page) if peer else None
                )
                base = floor.describe if op.startswith("Describe") else floor.page
                rows.append(
                    [
                        f"{op}, {size:,} jobs",
                        *_cells(theirs),
                        *_cells(ours),
                        *_cells(base),
                        ratio(percentile(theirs, 99), percentile(ours, 99)) if theirs else "n/a",
                        goal if size >= 1_000_000 else "",
                    ]
                )
    print_table(
        "Read latency in ms, client-measured one request at a time (includes the client floor)",
        [
            "operation",
            "moto p50",
            "moto p99",
            "batchd p50",
            "batchd p99",
            "floor p50",
            "floor p99",
            "moto/batchd p99",
            "goal (1M)",
        ],
        rows,
    )
    for note in notes:
        print(note)
    print(
        f"moto is loaded with {plan.moto_jobs:,} jobs (DescribeJobs / ListJobs) and shown next to "
        "batchd's row of the same size; floor = same client against a fixed-response server"
    )


if __name__ == "__main__":
    main()
