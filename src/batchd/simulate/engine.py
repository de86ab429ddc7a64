"""Run a configuration and a workload through the real operations, runtime and planner.

Requests go through botocore's model validation and the operations' handlers, exactly as
over HTTP but without it; the runtime runs on a ``VirtualClock`` moved by
``virtual_time.advance`` from one arrival to the next, and the fake backend (timers off) plays
each job for the duration and with the outcome the workload recorded.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, select

from batchd import jsontext
from batchd.api import app as _app  # noqa: F401  (registers every operation)
from batchd.backends.fake import FakeBackend
from batchd.clock import VirtualClock
from batchd.domain.arns import Arns
from batchd.operations.context import Context, Limits
from batchd.operations.registry import HANDLERS
from batchd.protocol.model import batch_model
from batchd.protocol.validate import validate
from batchd.runtime import virtual_time
from batchd.runtime.logs import BackendLogs
from batchd.runtime.loop import Runtime
from batchd.storage.rows import ACTIVE_STATUSES
from batchd.storage.schema import jobs
from batchd.storage.store import Store

__all__ = ["START_MS", "Simulated", "SimulationError", "run_simulation", "workload_lines"]

# Virtual time starts here (2023-11-14); outputs count seconds from it, so its value never shows.
START_MS = 1_700_000_000_000
REGION, ACCOUNT = "us-east-1", "123456789012"
_CONFIG_ORDER = (
    ("serviceEnvironments", "CreateServiceEnvironment"),
    ("schedulingPolicies", "CreateSchedulingPolicy"),
    ("jobQueues", "CreateJobQueue"),
    ("quotaShares", "CreateQuotaShare"),
)
_SUBMIT_FIELDS = (
    "jobName",
    "jobQueue",
    "shareIdentifier",
    "quotaShareName",
    "schedulingPriority",
    "retryStrategy",
    "preemptionConfiguration",
    "timeoutConfig",
)
# Progress goes to stderr at most this often (wall seconds).
_PROGRESS_SECONDS = 2.0


class SimulationError(Exception):
    """Bad configuration or workload: the message names the line or entry."""


class SeededIds:
    """Job and attempt ids from a seeded generator: the same seed, the same ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def job_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def attempt_id(self) -> str:
        return f"{self._random.getrandbits(128):032x}"


@dataclass(frozen=True)
class Simulated:
    """What a run leaves behind: the store to read jobs from, and how long it took."""

    store: Store
    end_ms: int
    jobs: int
    wall_seconds: float
    cycles: int


def workload_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, job) for each non-blank line, in file order."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    job = jsontext.loads(line)
                except ValueError as err:
                    raise SimulationError(f"{path}:{number}: not JSON: {err}") from None
                if not isinstance(job, dict):
                    raise SimulationError(f"{path}:{number}: not a JSON object")
                yield number, job


def _coarse(seconds: float, resolution: float, least: int = 0) -> float:
    """``seconds`` rounded up to a whole number (at least ``least``) of ``resolution``."""
    if resolution <= 0:
        return seconds
    return max(least, math.ceil(seconds / resolution - 1e-9)) * resolution


def _payload(job: dict[str, Any], resolution: float) -> str:
    seconds = _coarse(float(job.get("durationSeconds", 1)), resolution, least=1)
    env = {
        "BATCHD_FAKE_DURATION_SECONDS": repr(seconds),
        "BATCHD_FAKE_OUTCOME": str(job.get("outcome", "Completed")),
    }
    if job.get("failureReason"):
        env["BATCHD_FAKE_FAILURE_REASON"] = str(job["failureReason"])
    return jsontext.dumps_text(
        {
            "TrainingJobName": job["jobName"],
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole",
            "AlgorithmSpecification": {"TrainingImage": "simulated", "TrainingInputMode": "File"},
            "ResourceConfig": {
                "InstanceType": job.get("instanceType", "ml.m5.large"),
                "InstanceCount": int(job.get("instanceCount", 1)),
                "VolumeSizeInGB": 1,
            },
            "OutputDataConfig": {"S3OutputPath": "s3://simulated/out"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 2_419_200},
            "Environment": env,
        }
    )


class _Driver:
    def __init__(
        self, store: Store, seed: int, resolution: float, instant_start: bool = True
    ) -> None:
        self.resolution = resolution
        self.clock = VirtualClock(START_MS)
        self.store = store
        self.arns = Arns(REGION, ACCOUNT)
        self.backend = FakeBackend(
            self.clock, lambda: None, timers=False, forget_ended=True, instant_start=instant_start
        )
        self.runtime = Runtime(
            store, self.arns, self.clock, SeededIds(seed), {"fake": self.backend}, "fake"
        )
        self.ctx = Context(
            store=store,
            arns=self.arns,
            clock=self.clock,
            ids=self.runtime.ids,
            control=self.runtime,
            logs=BackendLogs({"fake": self.backend}),
            limits=Limits(),
            backends=frozenset(self.runtime.core.backends),
        )
        self.model = batch_model()

    async def call(self, operation: str, params: dict[str, Any]) -> Any:
        validate(operation, self.model.operation_model(operation).input_shape, params)
        return await HANDLERS[operation](self.ctx, params)

    async def configure(self, config: dict[str, Any]) -> None:
        unknown = set(config) - {key for key, _ in _CONFIG_ORDER}
        if unknown:
            raise SimulationError(f"config: unknown sections {sorted(unknown)}")
        for key, operation in _CONFIG_ORDER:
            for index, entry in enumerate(config.get(key) or []):
                try:
                    await self.call(operation, dict(entry))
                except Exception as err:
                    raise SimulationError(f"config {key}[{index}]: {err}") from err

    async def submit(self, number: int, job: dict[str, Any]) -> None:
        params = {k: job[k] for k in _SUBMIT_FIELDS if job.get(k) is not None}
        params["serviceJobType"] = "SAGEMAKER_TRAINING"
        try:
            params["serviceRequestPayload"] = _payload(job, self.resolution)
            await self.call("SubmitServiceJob", params)
        except Exception as err:
            raise SimulationError(f"workload line {number}: {err}") from err


class _Progress:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.began = time.monotonic()
        self.last = self.began

    def show(self, submitted: int, ended: int, now_ms: int, *, force: bool = False) -> None:
        wall = time.monotonic()
        if self.stream is None or (not force and wall - self.last < _PROGRESS_SECONDS):
            return
        self.last = wall
        rate = ended / max(wall - self.began, 1e-9)
        self.stream.write(
            f"simulate: {submitted} submitted, {ended} ended, simulated "
            f"{(now_ms - START_MS) / 3600_000:.2f} h, {rate:.0f} jobs/s\n"
        )
        self.stream.flush()


def _scratch_dir() -> str:
    # Each commit of the real store fsyncs (synchronous=FULL): on tmpfs that costs nothing,
    # and a simulation's store is thrown away.
    shm = "/dev/shm"
    usable = os.path.isdir(shm) and os.access(shm, os.W_OK)
    return tempfile.mkdtemp(prefix="batchd-simulate-", dir=shm if usable else None)


@contextlib.asynccontextmanager
async def run_simulation(
    config: dict[str, Any],
    arrivals: Iterable[tuple[int, dict[str, Any]]],
    *,
    seed: int = 0,
    resolution: float = 0.0,
    progress: TextIO | None = sys.stderr,
    on_step: Callable[[int], None] | None = None,
    instant_start: bool = True,
) -> AsyncIterator[Simulated]:
    """Run the workload to the end; yield the store (deleted on exit) to read results from.

    ``resolution`` (seconds, 0 for exact): arrivals and run times rounded up to a multiple of
    it, so that events share instants and so cycles; with every event at its own instant a
    job takes three or four. ``instant_start`` False steps the fake backend's training jobs
    through every phase, a cycle each, as the server's does: the same results, slower."""
    scratch = _scratch_dir()
    store = await Store.open(f"sqlite:///{scratch}/simulation.sqlite", scratch=True)
    driver = _Driver(store, seed, resolution, instant_start)
    began = time.monotonic()
    try:
        await driver.runtime.start(loop=False)
        await driver.configure(config)
        shown = _Progress(progress)
        submitted, cycles = 0, 0
        for number, job in arrivals:
            try:
                at = START_MS + round(_coarse(float(job["submittedAt"]), resolution) * 1000)
            except (KeyError, TypeError, ValueError):
                raise SimulationError(f"workload line {number}: submittedAt missing") from None
            if at < driver.clock.now_ms():
                raise SimulationError(f"workload line {number}: submittedAt goes back in time")
            if at > driver.clock.now_ms():
                cycles += await virtual_time.advance(driver.runtime, driver.clock, at)
            await driver.submit(number, job)
            submitted += 1
            shown.show(submitted, driver.backend.ended, driver.clock.now_ms())
            if on_step is not None:
                on_step(submitted)
        cycles += await _drain(driver, shown, submitted)
        shown.show(submitted, driver.backend.ended, driver.clock.now_ms(), force=True)
        await store.db.write(_index_submission_order)
        yield Simulated(
            store=store,
            end_ms=driver.clock.now_ms(),
            jobs=submitted,
            wall_seconds=time.monotonic() - began,
            cycles=cycles,
        )
    finally:
        await driver.runtime.close()
        await store.close()
        for name in os.listdir(scratch):
            os.unlink(os.path.join(scratch, name))
        os.rmdir(scratch)


async def _drain(driver: _Driver, shown: _Progress, submitted: int) -> int:
    """Run until every job has ended (or nothing is left to happen). Timers that outlive the
    jobs, such as a fair share being forgotten, would only stretch the simulated time."""
    cycles = await virtual_time.settle(driver.runtime, driver.clock.now_ms())
    while True:
        now = driver.clock.now_ms()
        if driver.backend.next_due(now) is None and not await _any_active(driver.store):
            return cycles
        due = driver.runtime.next_due(now)
        if due is None:
            return cycles
        cycles += await virtual_time.advance(driver.runtime, driver.clock, due)
        shown.show(submitted, driver.backend.ended, driver.clock.now_ms())


def _index_submission_order(conn: Connection) -> None:
    """Results are read in submission order, a page at a time: without an index on ``seq``
    (the server has none: it lists by queue) each page sorted the whole table. Built once,
    at the end, on this scratch copy only."""
    conn.exec_driver_sql(f"CREATE INDEX simulation_seq ON {jobs.name} (seq)")


async def _any_active(store: Store) -> bool:
    query = select(jobs.c.job_id).where(jobs.c.status.in_(ACTIVE_STATUSES)).limit(1)
    found = await store.db.read(lambda conn: conn.execute(query).first())
    return found is not None
