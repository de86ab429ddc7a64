"""A backend that pretends: durations and outcomes come from the payload's ``Environment``.

``BATCHD_FAKE_DURATION_SECONDS`` (default 1), ``BATCHD_FAKE_OUTCOME`` (Completed | Failed),
``BATCHD_FAKE_FAILURE_REASON`` (SageMaker's FailureReason text, e.g. ``CapacityError: ...``)
and ``BATCHD_FAKE_LAUNCH_ERROR`` (``Code: message``, refused at CreateTrainingJob). Each poll
advances a job by at most one phase, so SCHEDULED, STARTING and RUNNING are each observed
before it ends (unless ``instant_start``). It is for tests, demos and simulations; the jobs
exist only in memory.

A ``script`` (``batchd.testing``'s scripted outcomes) may decide instead of the payload: it is
asked at each start and returns a ``FakeRun``, or None to leave the payload in charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchd.backends.base import LaunchError, LaunchSpec, Progress, TrainingPhase, Wake
from batchd.clock import Clock

__all__ = ["FakeBackend", "FakeRun", "Script"]

_ORDER = (TrainingPhase.PENDING, TrainingPhase.DOWNLOADING, TrainingPhase.TRAINING)


@dataclass(frozen=True)
class FakeRun:
    """What one training job does: last ``seconds`` in Training, then end as ``outcome``
    (COMPLETED, FAILED, STOPPED by itself, or LOST). ``early`` spends the ``seconds`` Pending
    instead and never trains, as a capacity error does; ``launch_error`` (code, message)
    refuses it at once."""

    seconds: float = 1.0
    outcome: TrainingPhase = TrainingPhase.COMPLETED
    failure_reason: str | None = None
    early: bool = False
    launch_error: tuple[str, str] | None = None


Script = Callable[[LaunchSpec], FakeRun | None]


def _from_payload(env: Mapping[str, Any]) -> FakeRun:
    launch_error = env.get("BATCHD_FAKE_LAUNCH_ERROR")
    if launch_error:
        code, _, message = str(launch_error).partition(":")
        return FakeRun(launch_error=(code.strip(), message.strip()))
    try:
        seconds = float(env.get("BATCHD_FAKE_DURATION_SECONDS", "1"))
    except ValueError:
        seconds = 1.0
    if str(env.get("BATCHD_FAKE_OUTCOME", "Completed")).lower() != "failed":
        return FakeRun(seconds)
    reason = env.get("BATCHD_FAKE_FAILURE_REASON") or "AlgorithmError: fake failure"
    return FakeRun(seconds, TrainingPhase.FAILED, str(reason))


@dataclass
class _Job:
    started_ms: int
    duration_ms: int
    outcome: TrainingPhase
    failure_reason: str | None
    early: bool = False
    phase: TrainingPhase = TrainingPhase.PENDING
    stop_requested: bool = False


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        clock: Clock,
        wake: Wake,
        *,
        timers: bool = True,
        script: Script | None = None,
        forget_ended: bool = False,
        instant_start: bool = False,
    ) -> None:
        """``timers``: wake the runtime on the wall clock when a job is due; off under a
        virtual clock, whose driver asks ``next_due`` instead. ``forget_ended``: drop a job
        once its end has been reported, so a simulation of a million jobs keeps only the live
        ones (a later poll of it finds it lost, which the runtime never makes).
        ``instant_start``: the first poll finds a job already TRAINING, for the simulator.
        Stepping through the phases takes a cycle each, all at the instant of the start (the
        virtual clock does not move between them), so the service job starts RUNNING at the
        same time either way; only its training job's transitions skip Downloading."""
        self.script = script
        self._instant_start = instant_start
        self._clock = clock
        self._forget_ended = forget_ended
        self.ended = 0  # training jobs that have ended, for progress reports
        self._wake = wake
        self._jobs: dict[str, _Job] = {}
        self._use_timers = timers
        self._timers: list[asyncio.TimerHandle] = []
        self._ends: list[tuple[int, str]] = []  # (end, name) of training jobs; stale ones too

    async def start(self, spec: LaunchSpec) -> None:
        name = spec.training_job_name
        run = self.script(spec) if self.script is not None else None
        if run is None:
            env = spec.payload.get("Environment") or {}
            run = _from_payload(env if isinstance(env, dict) else {})
        if run.launch_error is not None:
            raise LaunchError(*run.launch_error)
        seconds = max(0.0, run.seconds)
        self._jobs[name] = _Job(
            started_ms=self._clock.now_ms(),
            duration_ms=int(seconds * 1000),
            outcome=run.outcome,
            failure_reason=run.failure_reason,
            early=run.early,
        )
        if run.early:
            heapq.heappush(self._ends, (self._clock.now_ms() + int(seconds * 1000), name))
        if self._use_timers:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(seconds, self._wake))
        self._wake()

    def next_due(self, after: int) -> int | None:
        """The earliest time later than ``after`` at which a training job of this backend
        ends on its own. (Starting and stopping jobs move on at every poll, at any time.)"""
        ends = self._ends
        while ends:
            end, name = ends[0]
            job = self._jobs.get(name)
            running = job is not None and (
                job.phase is TrainingPhase.TRAINING or (job.early and not job.phase.terminal)
            )
            if end > after and running and not (job and job.stop_requested):
                return end
            heapq.heappop(ends)  # ended, stopping, or due already: the next poll sees to it
        return None

    def steady_until(self, training_job_name: str) -> int | None:
        """Until its end, a training job in TRAINING reports TRAINING (``forget`` breaks
        this promise: the runtime must rebuild after it, as the test fixture's reset does)."""
        job = self._jobs.get(training_job_name)
        if job is None or job.phase is not TrainingPhase.TRAINING or job.stop_requested:
            return None
        return job.started_ms + job.duration_ms

    async def poll(self, training_job_names: Sequence[str]) -> Sequence[Progress]:
        now = self._clock.now_ms()
        return [self._observe(name, now) for name in training_job_names]

    def _observe(self, name: str, now: int) -> Progress:
        job = self._jobs.get(name)
        if job is None:
            return Progress(name, TrainingPhase.LOST, at_ms=now)
        if job.phase.terminal:
            return self._report(name, job, now)
        if job.stop_requested:
            job.phase = TrainingPhase.STOPPED
            self.ended += 1
        elif (job.early or job.phase is TrainingPhase.TRAINING) and (
            now - job.started_ms >= job.duration_ms
        ):
            job.phase = job.outcome
            self.ended += 1
        elif job.early:
            pass  # Pending until its outcome
        elif job.phase is not TrainingPhase.TRAINING:
            if self._instant_start:
                job.phase = TrainingPhase.TRAINING
            else:
                job.phase = _ORDER[_ORDER.index(job.phase) + 1]
            if job.phase is TrainingPhase.TRAINING:
                heapq.heappush(self._ends, (job.started_ms + job.duration_ms, name))
            self._wake()  # the next phase is due at once; do not wait for the tick period
        return self._report(name, job, now)

    def _report(self, name: str, job: _Job, now: int) -> Progress:
        stopped = job.phase is TrainingPhase.STOPPED
        reason = None
        if job.phase in (TrainingPhase.FAILED, TrainingPhase.LOST):
            reason = job.failure_reason
            if job.phase is TrainingPhase.FAILED:
                reason = reason or "AlgorithmError: fake failure"
        elif stopped:
            reason = "Training job stopped"
        if job.phase.terminal and self._forget_ended:
            self._jobs.pop(name, None)
        return Progress(
            training_job_name=name,
            phase=job.phase,
            failure_reason=reason,
            at_ms=now,
            stopped_by_request=stopped and job.stop_requested,
        )

    async def stop(self, training_job_name: str) -> None:
        job = self._jobs.get(training_job_name)
        if job is not None and not job.phase.terminal:
            job.stop_requested = True
        self._wake()

    async def log_hosts(self, training_job_name: str) -> Sequence[str]:
        return ()  # fake jobs run nothing, so they write no output

    async def read_log(self, training_job_name: str, host: str, offset: int, limit: int) -> bytes:
        return b""

    async def adopt(self, spec: LaunchSpec, scheduled_at: int, started_at: int | None) -> None:
        """A training job that another replica, or an earlier run, started: it goes on from
        where it was, ending when it would have ended."""
        name = spec.training_job_name
        if name in self._jobs:
            return
        with contextlib.suppress(LaunchError):  # it could not have been running
            await self.start(spec)
        job = self._jobs.get(name)
        if job is None:
            return
        job.started_ms = scheduled_at
        if started_at is not None:
            job.phase = TrainingPhase.TRAINING
            heapq.heappush(self._ends, (job.started_ms + job.duration_ms, name))

    def forget(self) -> None:
        """Drop every training job, as if none had ever started (a test's fresh start)."""
        self._jobs.clear()
        self._ends.clear()

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
