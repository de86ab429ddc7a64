"""Invariants under randomized workloads, through the real runtime, store and planner.

Each seed builds environments, queues and a mix of jobs (some too large to ever fit, some
failing, some retried, some terminated mid-flight), then runs the scheduler. After every
cycle the database must show: capacity never exceeded; each training job belongs to one
job and one attempt; and once nothing is running, every job is terminal or RUNNABLE in a
queue whose head states why it cannot run (FIFO head-of-line blocking, spec §7.2).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from batchd.domain.jobs import ServiceJob
from tests.support.harness import Harness

MISCONFIG_LIMIT = {
    "reason": "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
    "state": "RUNNABLE",
    "maxTimeSeconds": 600,
    "action": "TERMINATE",
}


def build(h: Harness, rng: random.Random) -> tuple[dict[str, int], list[str]]:
    limits = {f"env{i}": rng.randint(1, 6) for i in range(rng.randint(1, 2))}
    for env, cap in limits.items():
        h.environment(env, {"NUM_INSTANCES": cap})
    queues = []
    for i in range(rng.randint(1, 3)):
        name = f"q{i}"
        h.queue(
            name,
            rng.choice(list(limits)),
            priority=rng.randint(0, 5),
            jobStateTimeLimitActions=[MISCONFIG_LIMIT],
        )
        queues.append(name)
    return limits, queues


def submit_some(h: Harness, rng: random.Random, queues: list[str], count: int) -> list[str]:
    jobs = []
    for i in range(count):
        failing = rng.random() < 0.3
        extra: dict[str, Any] = {}
        if rng.random() < 0.5:
            extra["retryStrategy"] = {"attempts": rng.randint(1, 3)}
        jobs.append(
            h.submit(
                rng.choice(queues),
                name=f"j{i}",
                instances=rng.choice([0, 1, 1, 2, 3, 7]),
                seconds=rng.randint(1, 30),
                outcome="Failed" if failing else "Completed",
                **extra,
            )
        )
    return jobs


async def _active(h: Harness) -> list[ServiceJob]:
    return [job async for job in h.store.job_reads.stream_active()]


def check_capacity(h: Harness, limits: dict[str, int]) -> Counter[str]:
    held: Counter[str] = Counter()
    for job in h.run(_active(h)):
        if job.dispatched:
            assert job.current is not None
            held[job.current.environment] += sum(job.demand.values())
    for env, used in held.items():
        assert used <= limits[env], f"{env} holds {used} > {limits[env]}"
    return held


@pytest.mark.parametrize("seed", range(12))
def test_random_workloads_keep_every_invariant(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    h = Harness(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        limits, queues = build(h, rng)
        jobs = submit_some(h, rng, queues, 25)
        idle = 0
        for step in range(2000):
            h.tick(rng.choice([0, 1, 2, 5]))
            held = check_capacity(h, limits)
            if step == 20:
                for job_id in rng.sample(jobs, 3):
                    h.call("TerminateServiceJob", jobId=job_id, reason="chaos")
            idle = idle + 1 if not held else 0
            if idle > 5:
                break
        described = [h.job(j) for j in jobs]
        waiting = [d for d in described if d["status"] not in ("SUCCEEDED", "FAILED")]
        assert all(d["status"] == "RUNNABLE" for d in waiting)
        stated = {d["jobQueue"] for d in waiting if d.get("statusReason", "").startswith("MISCONF")}
        assert {d["jobQueue"] for d in waiting} <= stated, "a queue waits with no stated reason"
        owners: Counter[str] = Counter()
        for job in described:
            names = [a["serviceResourceId"]["value"] for a in job["attempts"]]
            assert len(names) == len(set(names))
            owners.update(set(names))
            limit = job.get("retryStrategy", {}).get("attempts", 1)
            assert len(job["attempts"]) <= limit
        assert all(count == 1 for count in owners.values())  # no training job shared
    finally:
        h.close()
