"""SubmitServiceJob requests/s that batchd sustains with every acknowledged job committed.

Peer in the same run: moto's server on SubmitJob (its closest operation), docker disabled.
Load: pre-signed requests replayed over keep-alive connections by an asyncio client, whose
own ceiling is measured against a fixed-response server first. The batchd queue sits on a
DISABLED service environment, so jobs stay queued and the scheduler dispatches nothing. After
the load, the rows in the database are counted and must equal the acknowledged submits.

    python bench/submit_capacity.py            # the real measurement (about 2 minutes)
    python bench/submit_capacity.py --smoke    # a few seconds, to keep the script working
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.benchlib.loadgen import LoadResult, run_load
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import (
    DEFAULT_PG_ADMIN,
    Server,
    batchd_server,
    exit_on_sigterm,
    moto_server,
    postgres_available,
    postgres_database,
    trivial_server,
    workspace,
)
from bench.benchlib.resources import batchd_queue, moto_queue
from bench.benchlib.signed import TOKEN, capture, training_payload
from bench.benchlib.table import fmt, percentile, print_table, ratio

SUBMIT_RESPONSE = (
    b'{"jobArn":"arn:aws:batch:us-east-1:123456789012:service-job/'
    b'00000000-0000-4000-8000-000000000001","jobName":"bench",'
    b'"jobId":"00000000-0000-4000-8000-000000000001"}'
)


@dataclass(frozen=True)
class Plan:
    connections: int
    warmup: float
    duration: float


@dataclass
class Measured:
    name: str
    load: LoadResult
    committed: int | None = None


def _submit_service_job(client: Any) -> Any:
    return client.submit_service_job(
        jobName="bench",
        jobQueue="bench",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=training_payload(),
        clientToken=TOKEN,
    )


def _load(server: Server, call: Callable[[Any], Any], plan: Plan) -> LoadResult:
    signed = capture(server.url, call)
    return run_load(
        server.port,
        [signed.raw],
        connections=plan.connections,
        warmup=plan.warmup,
        duration=plan.duration,
        token=TOKEN,
    )


def _count_sqlite(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM service_jobs").fetchone()[0])


def _pg_rows(url: str, _data: Path) -> int:
    return _count_postgres(url)


def _count_postgres(url: str) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM service_jobs"))
        finally:
            await conn.close()

    return asyncio.run(count())


def measure_ceiling(work: Path, plan: Plan) -> Measured:
    with trivial_server(work, {"/v1/submitservicejob": SUBMIT_RESPONSE}) as server:
        return Measured(
            "load generator vs fixed-response server", _load(server, _submit_service_job, plan)
        )


def measure_moto(work: Path, plan: Plan) -> Measured:
    with moto_server(work) as server:
        queue, definition = moto_queue(server.url)

        def submit_job(client: Any) -> Any:
            return client.submit_job(jobName="bench", jobQueue=queue, jobDefinition=definition)

        return Measured("moto SubmitJob", _load(server, submit_job, plan))


def measure_batchd(
    work: Path,
    name: str,
    plan: Plan,
    db_url: str | None,
    count: Callable[[Path], int],
    workers: int = 1,
) -> Measured:
    data = work / f"data-{name}-{workers}"
    server_cm: AbstractContextManager[Server] = batchd_server(work, data, db_url, workers=workers)
    with server_cm as server:
        batchd_queue(server.url, "bench", state="DISABLED")
        load = _load(server, _submit_service_job, plan)
        committed = count(data)
    label = f"batchd SubmitServiceJob, {name}" + (f", {workers} workers" if workers > 1 else "")
    return Measured(label, load, committed)


def _row(m: Measured, moto: Measured | None, target: float | None) -> list[str]:
    load = m.load
    errors = sum(load.errors.values()) + sum(n for s, n in load.statuses.items() if s >= 300)
    verified = "n/a"
    if m.committed is not None:
        verified = "yes" if m.committed == load.acknowledged else f"NO ({m.committed:,})"
    return [
        m.name,
        fmt(load.rate),
        ratio(load.rate, moto.load.rate) if moto and m is not moto else "",
        fmt(target) if target else "",
        fmt(percentile(load.latencies_ms, 50), 1),
        fmt(percentile(load.latencies_ms, 99), 1),
        fmt(load.acknowledged),
        str(errors),
        verified,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run, a few seconds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="PostgreSQL admin URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=2, help="also measure batchd with this many processes"
    )
    args = parser.parse_args()
    exit_on_sigterm()
    plan = Plan(args.connections, args.warmup, args.duration)
    if args.smoke:
        plan = Plan(8, 0.3, 1.0)
    pg_skip = "--no-postgres" if args.no_postgres else postgres_available(args.pg_admin)
    print(describe_machine(None if pg_skip else args.pg_admin))
    print(
        f"load: {plan.connections} keep-alive connections, {plan.warmup:g}s warm-up, "
        f"{plan.duration:g}s measured per target; one server running at a time"
    )
    with workspace() as work:
        ceiling = measure_ceiling(work, plan)
        moto = measure_moto(work, plan)
        counts = sorted({1, max(1, args.workers)})
        results = [
            measure_batchd(work, "SQLite", plan, None, lambda d: _count_sqlite(d / "batchd.db"), n)
            for n in counts
        ]
        if pg_skip is None:
            for n in counts:
                with postgres_database(args.pg_admin) as url:
                    results.append(
                        measure_batchd(
                            work, "PostgreSQL", plan, url, functools.partial(_pg_rows, url), n
                        )
                    )
    rows = [_row(ceiling, None, None), _row(moto, None, None)]
    rows += [_row(m, moto, 5000.0 if "SQLite" in m.name else 3000.0) for m in results]
    print_table(
        "Submit capacity (requests/s sustained; every acknowledged job committed)",
        [
            "target",
            "req/s",
            "vs moto",
            "goal",
            "p50 ms",
            "p99 ms",
            "acked",
            "errors",
            "rows = acked",
        ],
        rows,
    )
    if pg_skip is not None:
        print(f"PostgreSQL skipped: {pg_skip}")
    print(
        "goal: >= 5,000/s SQLite, >= 3,000/s PostgreSQL, >= 20x moto; ceiling row must be far above"
    )


if __name__ == "__main__":
    main()
