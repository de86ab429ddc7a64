"""Planner benchmark: index build and planning passes over a large backlog. Run by hand.

    .venv/bin/python bench/planner.py                 # 100k jobs, 100 shares, 1 queue
    .venv/bin/python bench/planner.py --large         # 1M jobs, 500 shares, 50 queues
    .venv/bin/python bench/planner.py --kind quota    # same backlog in quota shares

Between passes a fraction of the running jobs finish, so every pass has capacity to hand out, as
in a busy cluster. The planner's cost should follow what it dispatches and the number of lanes,
not the backlog: the "full" pass (nothing free) shows the per-lane floor.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from batchd.scheduling import (
    NUM_INSTANCES,
    Dispatch,
    Environment,
    FairsharePolicy,
    Job,
    JobIndex,
    Queue,
    QuotaShare,
    SchedulingState,
    UsageLedger,
    front_of_queue,
    plan,
)

INSTANCE = "ml.m5.large"


def build_state(kind: str, queues: int, shares: int, capacity: int) -> SchedulingState:
    per_queue = shares // queues
    unit = INSTANCE if kind == "quota" else NUM_INSTANCES
    envs = [
        Environment(f"env{i}", True, {unit: capacity})
        for i in range(queues if kind == "quota" else 1)
    ]
    configs = []
    for q in range(queues):
        if kind == "fairshare":
            weights = tuple((f"s{q}-{s}", 0.5 + (s % 4)) for s in range(0, per_queue, 3))
            policy = FairsharePolicy(3_600, 10, weights)
            configs.append(Queue(f"q{q}", q % 10, "env0", "FAIRSHARE", fairshare=policy))
        elif kind == "quota":
            own = max(1, capacity // per_queue)
            quota = tuple(
                QuotaShare(f"s{q}-{s}", True, {INSTANCE: own}, "LEND_AND_BORROW", 200, True, s)
                for s in range(per_queue)
            )
            configs.append(Queue(f"q{q}", 1, f"env{q}", "QUOTA", quota_shares=quota))
        else:
            configs.append(Queue(f"q{q}", q % 10, "env0", "FIFO"))
    return SchedulingState.of(envs, configs)


def make_jobs(kind: str, count: int, queues: int, shares: int, rnd: random.Random) -> list[Job]:
    per_queue = shares // queues
    jobs = []
    for i in range(count):
        q = i % queues
        share = f"s{q}-{rnd.randrange(per_queue)}"
        jobs.append(
            Job(
                job_id=f"job-{i}",
                queue=f"q{q}",
                created_at=i,
                seq=i,
                priority=rnd.randrange(10),
                share_identifier=share if kind == "fairshare" else None,
                quota_share_name=share if kind == "quota" else None,
                demand={INSTANCE: rnd.choice((1, 1, 1, 2, 4, 8))},
            )
        )
    return jobs


def apply(index: JobIndex, ledger: UsageLedger, decisions: list[Dispatch], now: int) -> None:
    for decision in decisions:
        job = index[decision.job_id]
        index.replace(
            replace(job, status="RUNNING", environment=decision.environment, scheduled_at=now)
        )
        ledger.start(job.queue, job.lane, job.instances, now)


def finish_some(
    index: JobIndex,
    ledger: UsageLedger,
    state: SchedulingState,
    fraction: float,
    now: int,
    rnd: random.Random,
) -> int:
    finished = 0
    for env in state.environments:
        for job in list(index.dispatched_in_environment(env).values()):
            if rnd.random() < fraction:
                index.remove(job.job_id)
                ledger.stop(job.queue, job.lane, job.instances, now)
                finished += 1
    return finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="1M jobs, 500 shares, 50 queues")
    parser.add_argument("--kind", choices=("fairshare", "quota", "fifo"), default="fairshare")
    parser.add_argument("--passes", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=1_000)
    parser.add_argument("--finish", type=float, default=0.1, help="fraction finishing per pass")
    args = parser.parse_args()
    jobs_n, shares, queues = (1_000_000, 500, 50) if args.large else (100_000, 100, 1)
    rnd = random.Random(42)
    state = build_state(args.kind, queues, shares, args.capacity)
    jobs = make_jobs(args.kind, jobs_n, queues, shares, rnd)

    started = time.perf_counter()
    index = JobIndex(jobs)
    build = time.perf_counter() - started
    ledger = UsageLedger()
    for queue in state.queues.values():
        if queue.fairshare:
            ledger.configure(queue.name, queue.fairshare.share_decay_seconds)
    print(
        f"{args.kind}: {jobs_n:,} RUNNABLE jobs, {shares} shares, {queues} queues, "
        f"capacity {args.capacity} per environment"
    )
    print(f"index build      {build:8.2f} s   ({jobs_n / build:,.0f} jobs/s)")

    now = 1_000_000
    durations: list[float] = []
    counts: list[int] = []
    for _ in range(args.passes):
        now += 10_000
        started = time.perf_counter()
        result = plan(state, index, ledger, now)
        durations.append(time.perf_counter() - started)
        counts.append(len(result))
        apply(index, ledger, list(result.dispatches), now)
        finish_some(index, ledger, state, args.finish, now, rnd)

    first, rest = durations[0], durations[1:] or durations
    total = sum(durations)
    print(
        f"first pass       {first * 1e3:8.1f} ms  ({counts[0]:,} decisions, fills empty capacity)"
    )
    print(
        f"steady passes    {statistics.mean(rest) * 1e3:8.1f} ms mean, "
        f"{statistics.median(rest) * 1e3:.1f} ms p50, {max(rest) * 1e3:.1f} ms max, "
        f"{statistics.mean(counts[1:] or counts):,.0f} decisions/pass"
    )
    print(f"throughput       {sum(counts) / total:10,.0f} decisions/s over {args.passes} passes")

    now += 10_000
    apply(index, ledger, list(plan(state, index, ledger, now).dispatches), now)
    started = time.perf_counter()
    idle = plan(state, index, ledger, now + 1)
    print(
        f"full pass        {(time.perf_counter() - started) * 1e3:8.1f} ms  "
        f"({len(idle)} decisions: nothing free, every lane head examined)"
    )

    started = time.perf_counter()
    front = front_of_queue(state, index, ledger, "q0", now, limit=100)
    print(f"front_of_queue   {(time.perf_counter() - started) * 1e3:8.1f} ms  ({len(front)} jobs)")


if __name__ == "__main__":
    main()
