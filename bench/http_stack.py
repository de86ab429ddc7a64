"""Server CPU per request: batchd's bare ASGI app against a Starlette build of the same app.

Two servers run side by side in one run, each a real subprocess under the same uvicorn
configuration (httptools, uvloop, no access log) on its own SQLite database:
  bare       ``batchd serve``, the app batchd ships (``batchd.api.app.BatchdApp``);
  Starlette  ``bench/benchlib/starlette_batchd.py``: the routing batchd had before the bare
             app (a logs route, then one catch-all route; the lifespan opens the runtime)
             whose endpoint reads the request through Starlette and calls the same
             ``BatchApi`` dispatch (route by the model, validate, handler, serializer).
Both get the same pre-signed keep-alive load, a fixed number of requests per repetition, for
DescribeServiceJob, SubmitServiceJob and ListServiceJobs (a 100-job page). CPU is the server
process's utime+stime (all threads) from ``/proc/<pid>/stat`` before and after, divided by the
2xx responses. Repetitions alternate the servers (AB BA AB ...) so drift on a shared machine
falls on both; the table gives the median, the min-max spread, and the ratio of the medians.
A second table calls each ASGI app in process with a fixed answer in place of ``BatchApi``:
the cost of the HTTP layer alone.

Starlette is not a dependency of batchd; install it next to the venv for this script only:
    pip install --target /tmp/starlette-lib starlette
    PYTHONPATH=/tmp/starlette-lib:src python -m bench.http_stack           # 3 to 6 minutes
    PYTHONPATH=/tmp/starlette-lib:src python -m bench.http_stack --smoke   # a few seconds
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.benchlib.loadgen import LoadResult, run_load
from bench.benchlib.machine import describe_machine
from bench.benchlib.procs import (
    Server,
    _server,
    batchd_server,
    exit_on_sigterm,
    free_port,
    workspace,
)
from bench.benchlib.resources import batchd_queue
from bench.benchlib.signed import TOKEN, batch_client, capture, training_payload
from bench.benchlib.table import fmt, print_table

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ("DescribeServiceJob", "SubmitServiceJob", "ListServiceJobs")
RESTING = "RUNNABLE"
PLACEHOLDER = "00000000-0000-4000-8000-7e57c11e0000"  # a job id's length
INSTALL = "pip install --target /tmp/starlette-lib starlette; PYTHONPATH=/tmp/starlette-lib:src"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the measurement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    reps: int
    connections: int
    counts: dict[str, int]  # requests per repetition, by operation
    prefill: int
    tick_seconds: float


@dataclass
class Sample:
    cpu_s: float
    served: int
    wall_s: float

    @property
    def us_per_request(self) -> float:
        return self.cpu_s / self.served * 1e6 if self.served else float("nan")


@dataclass
class Target:
    name: str
    server: Server
    requests: dict[str, list[bytes]] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def starlette_server(
    work: Path, data_dir: Path, tick_seconds: float
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.benchlib.starlette_batchd", "--port", str(port)]
    argv += ["--data-dir", str(data_dir), "--tick-seconds", str(tick_seconds)]
    return _server("starlette", argv, port, work, 120.0, {})


def _submit(client: Any) -> Any:
    return client.submit_service_job(
        jobName="bench",
        jobQueue="bench",
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=training_payload(),
        clientToken=TOKEN,
    )


def _load(server: Server, requests: Sequence[bytes], count: int, connections: int) -> LoadResult:
    token = TOKEN if TOKEN.encode() in requests[0] else None
    return run_load(
        server.port,
        requests,
        connections=connections,
        warmup=0,
        duration=3600,
        max_requests=count,
        token=token,
    )


def _listed(client: Any, status: str) -> list[str]:
    ids: list[str] = []
    kwargs: dict[str, Any] = {"jobQueue": "bench", "jobStatus": status, "maxResults": 100}
    while True:
        page = client.list_service_jobs(**kwargs)
        ids += [j["jobId"] for j in page["jobSummaryList"]]
        if not page.get("nextToken"):
            return ids
        kwargs["nextToken"] = page["nextToken"]


def prepare(target: Target, plan: Plan) -> None:
    """A DISABLED queue holding ``prefill`` jobs, and the signed requests of each operation."""
    server = target.server
    batchd_queue(server.url, "bench", state="DISABLED")
    submit = capture(server.url, _submit).raw
    _load(server, [submit], plan.prefill, min(plan.connections, 8))
    client = batch_client(server.url)
    deadline = time.monotonic() + 120
    # Jobs rest RUNNABLE on a DISABLED service environment, once the runtime has admitted them.
    while len(ids := _listed(client, RESTING)) < plan.prefill:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name}: {len(ids)} of {plan.prefill} jobs {RESTING}")
        time.sleep(0.2)
    describe = capture(server.url, lambda c: c.describe_service_job(jobId=PLACEHOLDER)).raw
    rng = random.Random(7)
    target.requests = {
        "DescribeServiceJob": [
            describe.replace(PLACEHOLDER.encode(), rng.choice(ids).encode(), 1) for _ in range(1000)
        ],
        "SubmitServiceJob": [submit],
        "ListServiceJobs": [
            capture(
                server.url,
                lambda c: c.list_service_jobs(jobQueue="bench", jobStatus=RESTING, maxResults=100),
            ).raw
        ],
    }


def measure(target: Target, op: str, count: int, connections: int) -> Sample:
    pid = target.server.pid
    before, started = cpu_seconds(pid), time.perf_counter()
    result = _load(target.server, target.requests[op], count, connections)
    wall, after = time.perf_counter() - started, cpu_seconds(pid)
    failed = sum(result.errors.values()) + sum(
        n for status, n in result.statuses.items() if not 200 <= status < 300
    )
    if failed:
        raise RuntimeError(
            f"{target.name} {op}: {failed} failed requests "
            f"({dict(result.statuses)}, {dict(result.errors)}):\n{target.server.log_tail()}"
        )
    return Sample(after - before, result.acknowledged, wall)


def run(targets: Sequence[Target], plan: Plan) -> None:
    for target in targets:  # untimed: imports, caches, first queries
        for op in OPERATIONS:
            measure(target, op, max(1, plan.counts[op] // 5), plan.connections)
    for rep in range(plan.reps):
        order = targets if rep % 2 == 0 else list(reversed(targets))
        for op in OPERATIONS:
            for target in order:
                sample = measure(target, op, plan.counts[op], plan.connections)
                target.samples.setdefault(op, []).append(sample)


# -- the report -----------------------------------------------------------------------------------


def _spread(samples: Sequence[Sample]) -> str:
    values = [s.us_per_request for s in samples]
    return f"{fmt(min(values))}-{fmt(max(values))}"


def _median(samples: Sequence[Sample]) -> float:
    return statistics.median(s.us_per_request for s in samples)


def report(bare: Target, star: Target | None) -> None:
    rows: list[list[str]] = []
    for op in OPERATIONS:
        a = bare.samples[op]
        row = [op, fmt(_median(a)), _spread(a)]
        rate = statistics.median(s.served / s.wall_s for s in a)
        if star is None:
            rows.append([*row, "skipped", "", "", "", f"{fmt(rate)} / -"])
            continue
        b = star.samples[op]
        # CPU time comes in clock ticks: a short smoke rep can read 0, which pairs with nothing.
        paired = [
            y.us_per_request / x.us_per_request
            for x, y in zip(a, b, strict=True)
            if x.us_per_request > 0
        ]
        rate_b = statistics.median(s.served / s.wall_s for s in b)
        ratio = f"{_median(b) / _median(a):.2f}x" if _median(a) > 0 else "n/a"
        rows.append(
            [
                *row,
                fmt(_median(b)),
                _spread(b),
                ratio,
                f"{min(paired):.2f}-{max(paired):.2f}x" if paired else "n/a",
                f"{fmt(rate)} / {fmt(rate_b)}",
            ]
        )
    print_table(
        "Server CPU per request, µs (utime+stime / 2xx responses; median and min-max of the reps)",
        [
            "operation",
            "bare",
            "bare range",
            "Starlette",
            "Starlette range",
            "Starlette/bare",
            "paired range",
            "req/s bare / Starlette",
        ],
        rows,
    )
    print("\nper repetition, µs/request (run order alternates AB, BA, ...):")
    for target in (bare, star):
        if target is None:
            continue
        for op in OPERATIONS:
            values = " ".join(fmt(s.us_per_request) for s in target.samples[op])
            print(f"  {target.name:<9} {op:<18} {values}")


def report_layers(bare: Target, calls: int, reps: int) -> None:
    from bench.benchlib.starlette_batchd import time_layers

    rows: list[list[str]] = []
    for op in OPERATIONS:
        found = time_layers(bare.requests[op][0], calls, reps)
        a, b = statistics.median(found["bare"]), statistics.median(found["Starlette"])
        spread = [f"{fmt(min(v), 1)}-{fmt(max(v), 1)}" for v in found.values()]
        rows.append([op, fmt(a, 1), spread[0], fmt(b, 1), spread[1], fmt(b - a, 1)])
    print_table(
        f"The HTTP layer alone, in process: CPU µs per call ({calls:,} calls x {reps} reps each, "
        "alternating; BatchApi replaced by a fixed answer)",
        ["request", "bare", "bare range", "Starlette", "Starlette range", "Starlette - bare"],
        rows,
    )


def _versions(have_starlette: bool) -> str:
    names = ["uvicorn", "httptools", "uvloop"] + (["starlette", "anyio"] if have_starlette else [])
    return ", ".join(f"{n} {importlib.metadata.version(n)}" for n in names)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _absolute_pythonpath() -> None:
    """Servers start in a temporary directory: make PYTHONPATH=src (and the like) absolute, so
    they import the sources this script does, and let them find the ``bench`` package."""
    parts = [
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join([*parts, str(ROOT)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run, a few seconds")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per server (>= 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--describes", type=int, default=20_000, help="per repetition")
    parser.add_argument("--submits", type=int, default=10_000, help="per repetition")
    parser.add_argument("--lists", type=int, default=3_000, help="100-job pages per repetition")
    parser.add_argument("--prefill", type=int, default=2_000, help="jobs stored before the reps")
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    args = parser.parse_args()
    exit_on_sigterm()
    counts = {
        "DescribeServiceJob": args.describes,
        "SubmitServiceJob": args.submits,
        "ListServiceJobs": args.lists,
    }
    plan = Plan(args.reps, args.connections, counts, args.prefill, args.tick_seconds)
    if args.smoke:
        plan = Plan(2, 4, dict.fromkeys(OPERATIONS, 100), 150, args.tick_seconds)
    have_starlette = _importable("starlette")
    if not have_starlette and not args.smoke:
        print(f"Starlette is not importable; install it for this script only:\n  {INSTALL}")
        return 2
    _absolute_pythonpath()
    print(describe_machine())
    print(f"versions: {_versions(have_starlette)}")
    print(
        f"load: {plan.connections} keep-alive connections, pre-signed requests; per repetition "
        + ", ".join(f"{n:,} {op}" for op, n in plan.counts.items())
        + f"; {plan.reps} repetitions per server, alternating; {plan.prefill:,} jobs pre-filled"
    )
    with workspace() as work, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            batchd_server(work, work / "bare", tick_seconds=plan.tick_seconds)
        )
        bare = Target("bare", server)
        targets = [bare]
        star: Target | None = None
        if have_starlette:
            server = stack.enter_context(starlette_server(work, work / "star", plan.tick_seconds))
            star = Target("Starlette", server)
            targets.append(star)
        for target in targets:
            prepare(target, plan)
        run(targets, plan)
    report(bare, star)
    if star is not None:
        report_layers(bare, 2_000 if args.smoke else 20_000, plan.reps)
    else:
        print(f"Starlette skipped: not importable. To measure it: {INSTALL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
