"""The runtime: the only writer of live jobs, and the loop that moves them.

One cycle (``tick``): poll the backends for the training jobs in flight and fold their
progress into the jobs; admit SUBMITTED jobs; ask the pure planner for decisions; apply
them; commit every changed job in one transaction; only then start and stop training jobs.
Acting after the commit means a crash can lose an action but never a record of it: a job
marked SCHEDULED whose training job never started is reported LOST on restart and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batchd.backends.base import Backend, LaunchError, LaunchSpec, Progress
from batchd.clock import Clock, Ids
from batchd.domain.arns import Arns
from batchd.domain.jobs import (
    CurrentAttempt,
    LatestServiceJobAttempt,
    ServiceJob,
    ServiceResourceId,
)
from batchd.domain.resources import JobQueue
from batchd.domain.status import JobStatus
from batchd.errors import NotFound
from batchd.runtime import outcomes
from batchd.runtime.planning import Action, Decision, Planning
from batchd.storage.store import Store

__all__ = ["Runtime", "training_job_name"]

log = logging.getLogger("batchd.runtime")

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def training_job_name(job: ServiceJob, attempt_id: str) -> str:
    """``AWSBatch`` + name + attempt id, inside SageMaker's 63-character rule (spec §12 #7)."""
    try:
        payload = json.loads(job.service_request_payload)
        base = payload.get("TrainingJobName") if isinstance(payload, dict) else None
    except ValueError:
        base = None
    name = _UNSAFE.sub("-", str(base or job.job_name))[:23].strip("-")
    return f"AWSBatch{name}{attempt_id}"


class Runtime:
    def __init__(
        self,
        store: Store,
        arns: Arns,
        clock: Clock,
        ids: Ids,
        backends: Mapping[str, Backend],
        default_backend: str,
        tick_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.arns = arns
        self.clock = clock
        self.ids = ids
        self.backends = backends
        self.default_backend = default_backend
        self.tick_seconds = tick_seconds
        self.planning = Planning(store, arns, default_backend)
        self._jobs: dict[str, ServiceJob] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, loop: bool = True) -> None:
        """Rebuild the in-memory state from the store, then (optionally) run the loop."""
        async with self._lock:
            await self.planning.reload()
            for job in await self.store.active_jobs():
                self._jobs[job.job_id] = job
                self.planning.add(job)
        if loop:
            self._task = asyncio.create_task(self._run(), name="batchd-runtime")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for backend in self.backends.values():
            await backend.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick_seconds)
            self._wake.clear()
            try:
                await self.tick(self.clock.now_ms())
            except Exception:  # keep scheduling; the next tick retries from durable state
                log.exception("scheduling cycle failed; retrying on the next tick")
                await asyncio.sleep(self.tick_seconds)

    # -- the cycle ---------------------------------------------------------------------------

    async def tick(self, now: int) -> None:
        """Run exactly one cycle at time ``now``."""
        async with self._lock:
            changed: dict[str, ServiceJob] = {}
            for progress in await self._poll():
                self._fold(progress, now, changed)
            self._admit(changed)
            actions = self._apply(self.planning.plan(self._jobs, now), now, changed)
            for job in changed.values():
                self._track(job)
            await self.store.save_jobs(list(changed.values()))
            follow_up = await self._act(actions, now)
            if follow_up:
                for job in follow_up.values():
                    self._track(job)
                await self.store.save_jobs(list(follow_up.values()))
                self.wake()

    async def _poll(self) -> list[Progress]:
        by_backend: dict[str, list[str]] = {}
        for job in self._jobs.values():
            if job.current is not None:
                by_backend.setdefault(job.current.backend, []).append(
                    job.current.training_job_name
                )
        found: list[Progress] = []
        for name, names in by_backend.items():
            found.extend(await self.backends[name].poll(names))
        return found

    def _fold(self, progress: Progress, now: int, changed: dict[str, ServiceJob]) -> None:
        job = self._by_training_job(progress.training_job_name)
        if job is None:
            return
        new = outcomes.after_progress(job, progress, now)
        if new != job:
            self.planning.released(job, new, now)
            changed[new.job_id] = new
            self._jobs[new.job_id] = new

    def _by_training_job(self, name: str) -> ServiceJob | None:
        # Training job names end with the 32-hex attempt id; the planning index maps them.
        job_id = self.planning.job_of_training_job(name)
        return self._jobs.get(job_id) if job_id else None

    def _admit(self, changed: dict[str, ServiceJob]) -> None:
        for job in list(self._jobs.values()):
            if job.status is JobStatus.SUBMITTED:
                new = dataclasses.replace(job, status=job.status.checked(JobStatus.RUNNABLE))
                self._jobs[job.job_id] = new
                changed[job.job_id] = new

    def _track(self, job: ServiceJob) -> None:
        """Keep the in-memory state and planner index equal to what was just stored."""
        if job.terminal:
            self._jobs.pop(job.job_id, None)
            self.planning.remove(job)
        else:
            self._jobs[job.job_id] = job
            self.planning.replace(job)

    async def _act(self, actions: Sequence[Action], now: int) -> dict[str, ServiceJob]:
        """Start and stop training jobs; launch failures come back as job changes."""
        follow_up: dict[str, ServiceJob] = {}
        for action in actions:
            job = self._jobs.get(action.job_id)
            if job is None or job.current is None:
                continue
            backend = self.backends[job.current.backend]
            if action.kind == "stop":
                await backend.stop(job.current.training_job_name)
                continue
            try:
                await backend.start(self._launch_spec(job))
            except LaunchError as err:
                follow_up[job.job_id] = self._launch_failed(job, err.code, err.message, now)
            except Exception as err:  # a backend bug must not wedge the job
                log.exception("backend %s failed to start %s", backend.name, job.job_id)
                follow_up[job.job_id] = self._launch_failed(
                    job, "InternalServerError", str(err), now
                )
        return follow_up

    def _launch_failed(self, job: ServiceJob, code: str, message: str, now: int) -> ServiceJob:
        new = outcomes.failed_to_launch(job, code, message, now)
        self.planning.released(job, new, now)
        self._jobs[job.job_id] = new
        return new

    def _launch_spec(self, job: ServiceJob) -> LaunchSpec:
        assert job.current is not None
        try:
            payload = json.loads(job.service_request_payload)
        except ValueError:
            payload = {}
        return LaunchSpec(
            job_id=job.job_id,
            job_arn=job.job_arn,
            attempt_id=job.current.attempt_id,
            training_job_name=job.current.training_job_name,
            training_job_arn=job.current.training_job_arn,
            payload=payload if isinstance(payload, dict) else {},
            tags=job.tags,
            region=self.arns.region,
            account_id=self.arns.account_id,
        )

    def _apply(
        self, decisions: Sequence[Decision], now: int, changed: dict[str, ServiceJob]
    ) -> list[Action]:
        """Turn the planner's decisions into job changes and backend actions."""
        actions: list[Action] = []
        for decision in decisions:
            job = self._jobs.get(decision.job_id)
            if job is None:
                continue
            new, action = self._decided(job, decision, now)
            if new != job:
                self.planning.released(job, new, now)
                self._jobs[new.job_id] = new
                changed[new.job_id] = new
            if action is not None:
                actions.append(action)
        return actions

    def _decided(
        self, job: ServiceJob, decision: Decision, now: int
    ) -> tuple[ServiceJob, Action | None]:
        kind = decision.kind
        if kind == "dispatch" and job.status is JobStatus.RUNNABLE:
            backend = self.planning.backend_of(decision.environment or "")
            new = self._dispatched(job, decision.environment or "", backend, now)
            return new, Action("start", job.job_id)
        if kind == "block" and job.status is JobStatus.RUNNABLE:
            since = job.blocked_since if job.blocked_code == decision.code else now
            return dataclasses.replace(job, status_reason=decision.reason, blocked_since=since), None
        if kind == "unblock" and job.status is JobStatus.RUNNABLE:
            return dataclasses.replace(job, status_reason=None, blocked_since=None), None
        if kind == "time-limit" and job.status is JobStatus.RUNNABLE:
            return outcomes.terminated_queued(job, decision.reason, now), None
        if kind in ("preempt", "timeout") and job.current and job.current.stop_kind is None:
            stop_kind = "preempt" if kind == "preempt" else "timeout"
            current = dataclasses.replace(job.current, stop_kind=stop_kind, stop_reason=decision.reason)
            reason = decision.reason if kind == "preempt" else job.status_reason
            new = dataclasses.replace(job, current=current, status_reason=reason)
            return new, Action("stop", job.job_id)
        return job, None

    def _dispatched(self, job: ServiceJob, environment: str, backend: str, now: int) -> ServiceJob:
        """A RUNNABLE job becomes SCHEDULED with a new training job (the planner's Dispatch)."""
        attempt_id = self.ids.attempt_id()
        name = training_job_name(job, attempt_id)
        arn = self.arns.training_job(name)
        return dataclasses.replace(
            job,
            status=job.status.checked(JobStatus.SCHEDULED),
            status_reason=None,
            scheduled_at=now,
            started_at=None,
            blocked_since=None,
            capacity_failed=False,
            latest_attempt=LatestServiceJobAttempt(ServiceResourceId(arn)),
            current=CurrentAttempt(
                attempt_id=attempt_id,
                training_job_name=name,
                training_job_arn=arn,
                environment=environment,
                backend=backend,
                scheduled_at=now,
            ),
        )

    # -- JobControl: what the API asks of the runtime ----------------------------------------

    async def submitted(self, job: ServiceJob) -> None:
        async with self._lock:
            if job.job_id not in self._jobs and not job.terminal:
                self._jobs[job.job_id] = job
                self.planning.add(job)
        self.wake()

    async def terminate(self, job_id: str, reason: str) -> None:
        async with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return  # already terminal: TerminateServiceJob is then a no-op (spec §5.3)
            now = self.clock.now_ms()
            if job.current is None:
                new = outcomes.terminated_queued(job, reason, now)
                await self.store.save_jobs([new])
                self._track(new)
            elif job.current.stop_kind != "terminate":
                current = dataclasses.replace(job.current, stop_kind="terminate", stop_reason=reason)
                new = dataclasses.replace(job, current=current)
                await self.store.save_jobs([new])
                self._track(new)
                await self.backends[current.backend].stop(current.training_job_name)
        self.wake()

    async def update(self, job_id: str, change: Callable[[ServiceJob], ServiceJob]) -> ServiceJob:
        async with self._lock:
            job = self._jobs.get(job_id) or await self.store.job(job_id)
            if job is None:
                raise NotFound(f"Service job {job_id} not found")
            new = change(job)
            await self.store.save_jobs([new])
            if job_id in self._jobs:
                self._track(new)
        self.wake()
        return new

    async def configuration_changed(self) -> None:
        async with self._lock:
            await self.planning.reload()
        self.wake()

    async def terminate_queued(
        self, reason: str, queue: str, quota_share: str | None = None
    ) -> None:
        """End every job of a deleted queue or quota share (spec §12 #26)."""
        doomed = [
            job.job_id
            for job in self._jobs.values()
            if job.queue_name == queue
            and (quota_share is None or job.quota_share_name == quota_share)
        ]
        for job_id in doomed:
            await self.terminate(job_id, reason)

    async def snapshot(self, queue: JobQueue) -> Mapping[str, Any]:
        async with self._lock:
            return self.planning.snapshot(queue, self._jobs, self.clock.now_ms())
