"""Several replicas, a storm of requests, the leader killed again and again: nothing
acknowledged is lost, nothing runs twice, capacity holds, and another replica leads in
seconds. Real ``batchd serve`` processes, real SIGKILLs, a real cut lock connection."""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.builders import fifo_queue
from tests.support.databases import PG_URL, fresh_database
from tests.support.process import ServerProcess
from tests.support.server import payload, wait_for

CAPACITY = 4
DISPATCHED = ("SCHEDULED", "STARTING", "RUNNING")


def health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/batchd/v1/health", timeout=2) as response:
            found: dict[str, Any] = json.load(response)
            return found
    except OSError:
        return None


@dataclass
class Ledger:
    """What clients were told: acknowledged jobs, terminates and priority updates."""

    jobs: set[str] = field(default_factory=set)
    terminated: set[str] = field(default_factory=set)
    priorities: dict[str, int] = field(default_factory=dict)
    long: list[str] = field(default_factory=list)


def storm(clients: Callable[[], list[Any]], ledger: Ledger, rnd: random.Random, n: int) -> None:
    """``n`` requests spread over the live replicas; only what returned 200 is recorded."""
    for i in range(n):
        live = clients()
        if not live:
            return
        batch = rnd.choice(live)
        try:
            roll = rnd.random()
            if roll < 0.6 or not ledger.long:
                long = roll < 0.3
                seconds = 600 if long else rnd.choice([0.2, 0.5, 1.0])
                env = {"BATCHD_FAKE_DURATION_SECONDS": str(seconds)}
                out = batch.submit_service_job(
                    jobName=f"s{i}",
                    jobQueue="q",
                    serviceJobType="SAGEMAKER_TRAINING",
                    serviceRequestPayload=payload(environment=env),
                )
                ledger.jobs.add(out["jobId"])
                if long:
                    ledger.long.append(out["jobId"])
            elif roll < 0.8:
                victim = rnd.choice(ledger.long)
                batch.terminate_service_job(jobId=victim, reason="storm")
                ledger.terminated.add(victim)
            else:
                target = rnd.choice(sorted(ledger.jobs))
                priority = rnd.randint(1, 99)
                batch.update_service_job(jobId=target, schedulingPriority=priority)
                ledger.priorities[target] = priority
        except Exception:  # a replica that died mid-request acknowledged nothing
            continue


def first_leader(urls: list[str]) -> int:
    def leading() -> list[int]:
        return [i for i, url in enumerate(urls) if (health(url) or {}).get("leader")]

    found: list[int] = wait_for(leading, timeout=15)
    return found[0]


def probe_failover(batch: Any, started: float) -> float:
    """Seconds from ``started`` (the kill) until a new job is dispatched."""
    out = batch.submit_service_job(
        jobName="probe",
        jobQueue="probe",  # capacity of its own: the storm's long jobs may hold all of q's
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=payload(environment={"BATCHD_FAKE_DURATION_SECONDS": "0"}),
    )

    def dispatched() -> bool:
        status = batch.describe_service_job(jobId=out["jobId"])["status"]
        return status in (*DISPATCHED, "SUCCEEDED")

    wait_for(dispatched, timeout=30, interval=0.01)
    return time.monotonic() - started


async def _stored(url: str) -> tuple[int, int]:
    """(jobs with more than one training job, most of queue q's jobs holding capacity at once,
    from their scheduledAt and stoppedAt: each job here has at most one attempt)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT job_id FROM training_jobs GROUP BY job_id"
            " HAVING count(*) > 1) AS d"
        )
        rows = await conn.fetch("SELECT doc FROM service_jobs WHERE queue = 'q'")
    finally:
        await conn.close()
    events: list[tuple[int, int]] = []
    for row in rows:
        doc = json.loads(row["doc"])
        if doc.get("scheduledAt") is not None:
            events.append((doc["scheduledAt"], 1))
            events.append((doc.get("stoppedAt") or 2**62, -1))
    peak = held = 0
    for _, delta in sorted(events):  # at one instant, releases come before dispatches
        held += delta
        peak = max(peak, held)
    return int(doubled), peak


def check(ledger: Ledger, batch: Any) -> None:
    for job_id in set(ledger.long) - ledger.terminated:  # long jobs would hold capacity
        batch.terminate_service_job(jobId=job_id, reason="storm")
        ledger.terminated.add(job_id)
    for job_id in ledger.terminated:
        wait_for(lambda j=job_id: batch.describe_service_job(jobId=j)["status"] == "FAILED")
    for job_id in ledger.jobs - set(ledger.long):
        wait_for(
            lambda j=job_id: batch.describe_service_job(jobId=j)["status"] == "SUCCEEDED",
            timeout=60,
        )
    for job_id in ledger.jobs:
        job = batch.describe_service_job(jobId=job_id)
        if job_id in ledger.terminated:
            assert job["isTerminated"] is True and job["statusReason"] == "storm", job
        if job_id in ledger.priorities:
            assert job["schedulingPriority"] == ledger.priorities[job_id], job
    listed: list[str] = []
    for status in ("SUBMITTED", "RUNNABLE", *DISPATCHED, "SUCCEEDED", "FAILED"):
        pages = batch.get_paginator("list_service_jobs").paginate(jobQueue="q", jobStatus=status)
        listed += [j["jobId"] for page in pages for j in page["jobSummaryList"]]
    assert len(listed) == len(set(listed)), "a job is listed twice"
    assert ledger.jobs <= set(listed), "an acknowledged job is missing"


def setup_queue(batch: Any) -> None:
    fifo_queue(batch, "q", CAPACITY)
    fifo_queue(batch, "probe", 1)  # capacity of its own for probe_failover


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    fresh_database("postgres", tmp_path)
    servers = [ServerProcess(tmp_path / f"r{i}", PG_URL) for i in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.kill()


async def _cut_lock() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        for row in await conn.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory'"):
            await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
    finally:
        await conn.close()


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_three_replicas_lose_nothing_run_nothing_twice_and_fail_over_fast(
    replicas: list[ServerProcess],
) -> None:
    import asyncio

    rnd = random.Random(11)
    ledger = Ledger()
    up = {i: r.client() for i, r in enumerate(replicas)}
    setup_queue(up[0])
    failovers: list[float] = []
    for round_ in range(4):
        storm(lambda: list(up.values()), ledger, rnd, 40)
        leader = first_leader([r.url for r in replicas])
        survivor = up[(leader + 1) % len(replicas)]
        if round_ < 3:  # SIGKILL the leader in the middle of a burst
            storm(lambda: list(up.values()), ledger, rnd, rnd.randint(0, 20))
            replicas[leader].kill()
            del up[leader]
            started = time.monotonic()
        else:  # the leader keeps running, but its lock connection is cut
            asyncio.run(_cut_lock())
            started = time.monotonic()
        storm(lambda: list(up.values()), ledger, rnd, 20)
        failovers.append(probe_failover(survivor, started))
        if leader not in up:
            replicas[leader].start()
            up[leader] = replicas[leader].client()
    check(ledger, up[0])
    doubled, peak = asyncio.run(_stored(PG_URL))
    assert doubled == 0, "an attempt was dispatched twice"
    assert peak <= CAPACITY, f"{peak} training jobs alive at once on {CAPACITY} instances"
    assert max(failovers) < 3.0, failovers
    print(
        f"\nacknowledged: {len(ledger.jobs)} jobs, {len(ledger.terminated)} terminates, "
        f"{len(ledger.priorities)} updates; failover p50 {statistics.median(failovers):.2f} s, "
        f"max {max(failovers):.2f} s"
    )


@pytest.mark.timeout(180)
def test_workers_on_sqlite_lose_nothing_when_the_scheduling_worker_dies(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", f"sqlite:///{tmp_path / 'batchd.db'}", "fake")
    server.extra = ("--workers", "3")
    server.start()
    try:
        batch = server.client()
        wait_for(lambda: (health(server.url) or {}).get("status") == "ok")
        setup_queue(batch)
        rnd = random.Random(3)
        ledger = Ledger()
        failovers: list[float] = []
        killed: set[int] = set()

        def workers_serving() -> bool:
            seen = {(health(server.url) or {}).get("replica") for _ in range(30)}
            return len({r for r in seen if r and int(r.rsplit(":", 1)[1]) not in killed}) == 3

        for _ in range(3):
            wait_for(workers_serving, timeout=90)  # the last one killed has been replaced
            storm(lambda: [batch], ledger, rnd, 40)
            found = wait_for(lambda: [h for h in [health(server.url)] if h and h["leader"]])
            pid = int(found[0]["replica"].rsplit(":", 1)[1])
            killed.add(pid)
            os.kill(pid, signal.SIGKILL)  # the parent restarts it; another worker leads
            started = time.monotonic()
            storm(lambda: [batch], ledger, rnd, 20)
            failovers.append(probe_failover(batch, started))
        check(ledger, batch)
        assert max(failovers) < 3.0, failovers
    finally:
        server.kill()
