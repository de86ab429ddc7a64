"""Scheduling: dispatch decisions/s and pass duration with many RUNNABLE jobs queued,
through the real runtime; and submit -> SCHEDULED latency over HTTP.

Part 1 (in-process, no peer: moto has no scheduler). For each size, RUNNABLE jobs spread over
50 fair-share queues and 500 share identifiers are bulk-loaded into a fresh SQLite database,
then a real ``Runtime`` (real store, real planner, the fake backend; a manual clock) rebuilds
its index from it and runs ``Runtime.tick`` one second of clock apart. Jobs 'run' for 0 s,
so every few ticks a wave of dispatches refills the freed capacity. Reported: dispatches per
second of tick time (the whole cycle: poll, plan, commit, start) and of planner time alone,
and the duration of a pass that dispatches and of one that finds no capacity.

Part 2 (over HTTP, peer: moto). Jobs submitted one at a time to a server with free capacity;
the time until DescribeServiceJob first shows SCHEDULED (or later) is polled on a keep-alive
connection. moto's equivalent is SubmitJob until DescribeJobs shows STARTING or later.

    python bench/scheduling.py                        # 10k, 100k, 1M queued (about 10 minutes)
    python bench/scheduling.py --sizes 10000,100000
    python bench/scheduling.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.benchlib.bulk import ARNS, START_MS, JobSpec, load_jobs
from bench.benchlib.latency import BlockingConnection
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import Server, batchd_server, exit_on_sigterm, moto_server, workspace
from bench.benchlib.resources import batchd_queue, moto_queue
from bench.benchlib.signed import TOKEN, capture, training_payload
from bench.benchlib.table import fmt, percentile, print_table, ratio

from batchd.api import app as _registers_operations  # noqa: F401
from batchd.backends.base import LaunchSpec
from batchd.backends.fake import FakeBackend
from batchd.clock import SystemClock
from batchd.domain.status import JobStatus
from batchd.operations.context import Context
from batchd.operations.registry import HANDLERS
from batchd.protocol.model import batch_model
from batchd.protocol.validate import validate
from batchd.runtime.logs import BackendLogs
from batchd.runtime.loop import Runtime
from batchd.storage.store import Store

QUEUES = 50
SHARES = 500
ENVIRONMENTS = 5
PLACEHOLDER = "00000000-0000-4000-8000-7e57c11e0000"


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    capacity: int  # instances in all environments together
    ticks: int
    tick_budget_s: float
    submits: int


class ManualClock(SystemClock):
    """batchd's clock with time standing still between ticks."""

    def __init__(self) -> None:
        self.now = START_MS + 10_000_000_000

    def now_ms(self) -> int:
        return self.now

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.now / 1000, UTC)


class CountingIds:
    def __init__(self) -> None:
        self.n = 0

    def job_id(self) -> str:
        return str(uuid.uuid4())

    def attempt_id(self) -> str:
        self.n += 1
        return f"{self.n:032x}"


class CountingBackend(FakeBackend):
    """The fake backend, counting the training jobs it is asked to start."""

    started = 0

    async def start(self, spec: LaunchSpec) -> None:
        self.started += 1
        await super().start(spec)


@dataclass
class PassStats:
    size: int
    rebuild_s: float = 0.0
    ticks: list[tuple[float, float, int]] = field(
        default_factory=list
    )  # tick s, plan s, dispatched

    def dispatching(self) -> list[tuple[float, float, int]]:
        return [t for t in self.ticks if t[2] > 0]

    def rate(self, which: int) -> float:
        busy = self.dispatching()
        seconds = sum(t[which] for t in busy)
        return sum(t[2] for t in busy) / seconds if seconds else 0.0

    def mean_ms(self, dispatching: bool, which: int = 0) -> float:
        chosen = [t[which] for t in self.ticks if (t[2] > 0) == dispatching]
        return 1000 * sum(chosen) / len(chosen) if chosen else float("nan")


def _open(store: Store, clock: ManualClock) -> tuple[Runtime, CountingBackend]:
    backend = CountingBackend(clock, lambda: None)
    runtime = Runtime(store, ARNS, clock, CountingIds(), {"fake": backend}, "fake")
    return runtime, backend


async def _call(ctx: Context, operation: str, **params: Any) -> Any:
    op = batch_model().operation_model(operation)
    validate(operation, op.input_shape, params)
    return await HANDLERS[operation](ctx, params)


async def _configure(db_url: str, capacity: int) -> None:
    """5 environments, 50 fair-share queues, through batchd's own operations."""
    store = await Store.open(db_url)
    clock = ManualClock()
    runtime, _ = _open(store, clock)
    await runtime.start(loop=False)
    ctx = Context(
        store=store,
        arns=ARNS,
        clock=clock,
        ids=runtime.ids,
        control=runtime,
        logs=BackendLogs(runtime.core.backends),
    )
    policy = await _call(ctx, "CreateSchedulingPolicy", name="fair", fairsharePolicy={})
    for e in range(ENVIRONMENTS):
        await _call(
            ctx,
            "CreateServiceEnvironment",
            serviceEnvironmentName=f"env{e}",
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[
                {"maxCapacity": capacity // ENVIRONMENTS, "capacityUnit": "NUM_INSTANCES"}
            ],
        )
    for q in range(QUEUES):
        await _call(
            ctx,
            "CreateJobQueue",
            jobQueueName=f"q{q:02d}",
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            schedulingPolicyArn=policy["arn"] if isinstance(policy, dict) else policy.arn,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": f"env{q % ENVIRONMENTS}"}],
        )
    await runtime.close()
    await store.close()


async def _run_ticks(db_url: str, size: int, plan: Plan) -> PassStats:
    stats = PassStats(size)
    store = await Store.open(db_url)
    clock = ManualClock()
    runtime, backend = _open(store, clock)
    started = time.perf_counter()
    await runtime.start(loop=False)
    stats.rebuild_s = time.perf_counter() - started
    planning = runtime.planning
    plan_time = [0.0]
    original = planning.plan

    def timed_plan(now: int) -> Any:
        begin = time.perf_counter()
        try:
            return original(now)
        finally:
            plan_time[0] += time.perf_counter() - begin

    setattr(planning, "plan", timed_plan)  # noqa: B010  (instrument one instance)
    deadline = time.monotonic() + plan.tick_budget_s
    try:
        for _ in range(plan.ticks):
            if time.monotonic() > deadline:
                break
            clock.now += 1000
            before, plan_time[0] = backend.started, 0.0
            begin = time.perf_counter()
            await runtime.tick(clock.now)
            stats.ticks.append(
                (time.perf_counter() - begin, plan_time[0], backend.started - before)
            )
    finally:
        await runtime.close()
        await store.close()
    return stats


def measure_passes(work: Path, size: int, plan: Plan) -> tuple[PassStats, float]:
    path = work / f"sched-{size}.db"
    url = f"sqlite:///{path}"
    asyncio.run(_configure(url, plan.capacity))
    spec = JobSpec(
        queue=lambda i: f"q{i % QUEUES:02d}",
        status=lambda _: JobStatus.RUNNABLE,
        share=lambda i: f"share{i % SHARES:03d}",
    )
    load_s = load_jobs(url, size, spec)
    try:
        return asyncio.run(_run_ticks(url, size, plan)), load_s
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- part 2: submit -> SCHEDULED over HTTP -----------------------------------------------------


def _poll_latency(
    server: Server,
    submit: bytes,
    describe: bytes,
    id_of: Callable[[bytes], str],
    status_of: Callable[[bytes], str],
    done: frozenset[str],
    count: int,
) -> list[float]:
    latencies: list[float] = []
    with BlockingConnection(server.port) as conn:
        for _ in range(count):
            started = time.perf_counter()
            status, body = conn.send(submit.replace(TOKEN.encode(), str(uuid.uuid4()).encode(), 1))
            if status != 200:
                raise RuntimeError(f"submit failed: HTTP {status} {body[:200]!r}")
            poll = describe.replace(PLACEHOLDER.encode(), id_of(body).encode(), 1)
            deadline = started + 30
            while time.perf_counter() < deadline:
                status, body = conn.send(poll)
                if status == 200 and status_of(body) in done:
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
                time.sleep(0.0005)
    return latencies


def _job_id_of(body: bytes) -> str:
    return str(json.loads(body)["jobId"])


def latency_batchd(work: Path, count: int) -> list[float]:
    with batchd_server(work, work / "latency-data") as server:
        queue = batchd_queue(server.url, "latency", state="ENABLED", capacity=count + 10)
        submit = capture(
            server.url,
            lambda c: c.submit_service_job(
                jobName="bench",
                jobQueue=queue,
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=training_payload(seconds=3600),
                clientToken=TOKEN,
            ),
        ).raw
        describe = capture(server.url, lambda c: c.describe_service_job(jobId=PLACEHOLDER)).raw
        done = frozenset({"SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"})
        return _poll_latency(
            server,
            submit,
            describe,
            _job_id_of,
            lambda b: str(json.loads(b)["status"]),
            done,
            count,
        )


def latency_moto(work: Path, count: int) -> list[float]:
    with moto_server(work) as server:
        queue, definition = moto_queue(server.url)
        submit = capture(
            server.url,
            lambda c: c.submit_job(jobName="bench", jobQueue=queue, jobDefinition=definition),
        ).raw
        describe = capture(server.url, lambda c: c.describe_jobs(jobs=[PLACEHOLDER])).raw
        done = frozenset({"STARTING", "RUNNING", "SUCCEEDED", "FAILED"})

        def status_of(body: bytes) -> str:
            found = json.loads(body).get("jobs") or [{}]
            return str(found[0].get("status", ""))

        return _poll_latency(server, submit, describe, _job_id_of, status_of, done, count)


def _pass_rows(results: Sequence[tuple[PassStats, float]]) -> list[list[str]]:
    base = results[0][0]
    rows = []
    for stats, load_s in results:
        busy = stats.dispatching()
        rows.append(
            [
                f"{stats.size:,} RUNNABLE",
                f"{load_s:.0f} / {stats.rebuild_s:.1f}",
                str(len(stats.ticks)),
                fmt(sum(t[2] for t in busy)),
                fmt(stats.rate(0)),
                fmt(stats.rate(1)),
                fmt(stats.mean_ms(True), 1),
                ratio(stats.mean_ms(True), base.mean_ms(True), 2),
                fmt(stats.mean_ms(False), 1),
                ratio(stats.mean_ms(False), base.mean_ms(False), 2),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--capacity", type=int, default=2000, help="instances, all environments")
    parser.add_argument("--ticks", type=int, default=13)
    parser.add_argument(
        "--tick-budget", type=float, default=180.0, help="seconds of ticks per size"
    )
    parser.add_argument("--submits", type=int, default=200)
    args = parser.parse_args()
    exit_on_sigterm()
    plan = Plan(
        tuple(int(s) for s in args.sizes.split(",")),
        args.capacity,
        args.ticks,
        args.tick_budget,
        args.submits,
    )
    if args.smoke:
        plan = Plan((2000,), 100, 4, 30.0, 5)
    print(describe_machine())
    print(
        f"{QUEUES} fair-share queues on {ENVIRONMENTS} environments "
        f"({plan.capacity:,} instances in all), {SHARES} share identifiers, "
        "1 instance per job, jobs run 0 s; "
        f"up to {plan.ticks} ticks 1 s of clock apart"
    )
    with workspace() as work:
        results = [measure_passes(work, size, plan) for size in plan.sizes]
        theirs = latency_moto(work, plan.submits)
        ours = latency_batchd(work, plan.submits)
    print_table(
        "Scheduling passes through Runtime.tick (SQLite store, fake backend); "
        "no peer: moto has no scheduler",
        [
            "queued",
            "load / rebuild s",
            "ticks",
            "dispatched",
            "dispatch/s (tick)",
            "dispatch/s (planner)",
            "dispatching tick ms",
            "vs smallest",
            "idle tick ms",
            "vs smallest",
        ],
        _pass_rows(results),
    )
    print("goal: >= 20,000 dispatch decisions/s at 1M queued; pass cost < 2x from 10k to 1M")
    print_table(
        "Submit -> dispatched latency over HTTP, ms (batchd: SCHEDULED; moto: STARTING)",
        ["", "moto", "batchd", "moto/batchd"],
        [
            [
                "p50",
                fmt(percentile(theirs, 50), 1),
                fmt(percentile(ours, 50), 1),
                ratio(percentile(theirs, 50), percentile(ours, 50)),
            ],
            [
                "p99",
                fmt(percentile(theirs, 99), 1),
                fmt(percentile(ours, 99), 1),
                ratio(percentile(theirs, 99), percentile(ours, 99)),
            ],
            ["jobs", str(len(theirs)), str(len(ours)), ""],
        ],
    )
    print("goal: batchd submit -> SCHEDULED p50 < 50 ms")


if __name__ == "__main__":
    main()
