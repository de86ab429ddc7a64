"""Calls/s through the real boto3 client: SubmitServiceJob and DescribeServiceJob.

From 1 and 4 client processes (each one boto3 client, one call at a time, as user code does),
against: a fixed-response server returning batchd's own response bytes (the client's
ceiling: what boto3 reaches when the server costs nothing), batchd (SQLite, jobs parked on a
DISABLED service environment), and moto (SubmitJob / DescribeJobs, docker disabled).

    python bench/client_throughput.py          # about 2 minutes
    python bench/client_throughput.py --smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from bench.benchlib.signed import batch_client, training_payload
from bench.benchlib.table import fmt, print_table, ratio

PROCESSES = (1, 4)
OPERATIONS = ("Submit", "Describe")


@dataclass(frozen=True)
class Target:
    """How to call an operation on one server: endpoint and call arguments."""

    endpoint: str
    kind: str  # batchd | moto
    queue: str
    definition: str = ""
    job_id: str = ""


def _call(client: Any, target: Target, op: str) -> Any:
    if target.kind == "moto":
        if op == "Submit":
            return client.submit_job(
                jobName="bench", jobQueue=target.queue, jobDefinition=target.definition
            )
        return client.describe_jobs(jobs=[target.job_id])
    if op == "Submit":
        return client.submit_service_job(
            jobName="bench",
            jobQueue=target.queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=training_payload(),
        )
    return client.describe_service_job(jobId=target.job_id)


def _client_process(target: Target, op: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """One boto3 client calling as fast as it can for ``seconds`` once ``go`` is set."""
    client = batch_client(target.endpoint)
    for _ in range(20):  # warm up: connection, model loading, caches
        _call(client, target, op)
    ready.put(True)
    go.wait(timeout=120)
    calls, errors = 0, 0
    begin = time.perf_counter()
    end = begin + seconds
    while time.perf_counter() < end:
        try:
            _call(client, target, op)
            calls += 1
        except Exception:  # count it; a failing client is part of the result
            errors += 1
            if errors > 100:
                break
    out.put((calls, errors, time.perf_counter() - begin))


def _rate(target: Target, op: str, processes: int, seconds: float) -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [
        ctx.Process(target=_client_process, args=(target, op, seconds, ready, go, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:  # every client is warm before any starts counting
            ready.get(timeout=120)
        go.set()
        results = [out.get(timeout=seconds + 120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    calls = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    return calls / max(r[2] for r in results), errors


def _measure(
    target: Target, seconds: float, processes: tuple[int, ...]
) -> dict[tuple[str, int], tuple[float, int]]:
    return {(op, n): _rate(target, op, n, seconds) for op in OPERATIONS for n in processes}


def _strip(response: dict[str, Any]) -> bytes:
    response = dict(response)
    response.pop("ResponseMetadata", None)
    return json.dumps(
        response, default=lambda t: t.timestamp() * 1000, separators=(",", ":")
    ).encode()


def _batchd_target(server: Server) -> Target:
    queue = batchd_queue(server.url, "bench", state="DISABLED")
    job = batch_client(server.url).submit_service_job(
        jobName="bench",
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=training_payload(),
    )
    return Target(server.url, "batchd", queue, job_id=job["jobId"])


def _ceiling(
    work: Path, batchd: Target, seconds: float, processes: tuple[int, ...]
) -> dict[tuple[str, int], tuple[float, int]]:
    """batchd's real response bytes, served at no cost."""
    client = batch_client(batchd.endpoint)
    submitted = client.submit_service_job(
        jobName="bench",
        jobQueue=batchd.queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=training_payload(),
    )
    # Raw body as the server sent it (boto3 would turn timestamps into datetimes).
    raw: dict[str, bytes] = {}

    def keep(http_response: Any, **_: Any) -> None:
        raw["describe"] = http_response.content

    client.meta.events.register(
        "after-call.batch.DescribeServiceJob", lambda **kw: keep(kw["http_response"])
    )
    client.describe_service_job(jobId=submitted["jobId"])
    responses = {
        "/v1/submitservicejob": _strip(submitted),
        "/v1/describeservicejob": raw["describe"],
    }
    with trivial_server(work, responses) as server:
        target = Target(server.url, "batchd", batchd.queue, job_id=submitted["jobId"])
        return _measure(target, seconds, processes)


def _moto(
    work: Path, seconds: float, processes: tuple[int, ...]
) -> dict[tuple[str, int], tuple[float, int]]:
    with moto_server(work) as server:
        queue, definition = moto_queue(server.url)
        job = batch_client(server.url).submit_job(
            jobName="bench", jobQueue=queue, jobDefinition=definition
        )
        target = Target(server.url, "moto", queue, definition, job["jobId"])
        return _measure(target, seconds, processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell")
    args = parser.parse_args()
    exit_on_sigterm()
    seconds = 0.5 if args.smoke else args.seconds
    processes = (1,) if args.smoke else PROCESSES
    print(describe_machine())
    print(
        f"{seconds:g}s per cell after warm-up; each process: one boto3 client, one call at a time"
    )
    with workspace() as work:
        with batchd_server(work, work / "data") as server:
            target = _batchd_target(server)
            batchd = _measure(target, seconds, processes)
            ceiling = _ceiling(work, target, seconds, processes)
        moto = _moto(work, seconds, processes)
    rows: list[list[str]] = []
    for op in OPERATIONS:
        for n in processes:
            ours, errors = batchd[(op, n)]
            rows.append(
                [
                    f"{op}ServiceJob, {n} proc",
                    fmt(ceiling[(op, n)][0]),
                    fmt(moto[(op, n)][0]),
                    fmt(ours),
                    f"{100 * ours / ceiling[(op, n)][0]:.0f}%",
                    ratio(ours, moto[(op, n)][0]),
                    str(errors + moto[(op, n)][1]),
                ]
            )
    print_table(
        "boto3 calls/s (moto runs SubmitJob / DescribeJobs)",
        ["operation", "ceiling", "moto", "batchd", "batchd % of ceiling", "batchd/moto", "errors"],
        rows,
    )
    print("goal: batchd >= 90% of the client's ceiling")


if __name__ == "__main__":
    main()
