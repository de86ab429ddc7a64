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
import functools
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
from batchd.domain.training import TrainingJob
from batchd.errors import NotFound
from batchd.runtime import outcomes, training
from batchd.runtime.admissions import PendingAdmissions
from batchd.runtime.planning import Action, Decision, Planning
from batchd.storage.store import Store

__all__ = ["Runtime", "training_job_name"]

log = logging.getLogger("batchd.runtime")

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_INGEST_EVERY_MS = 50
_COALESCE_SECONDS = 0.005
# The job fields the API changes after submit; followers forward them to the leader.
_FORWARDABLE = ("scheduling_priority", "tags")


def training_job_name(job: ServiceJob, attempt_id: str) -> str:
    """``AWSBatch`` + name + attempt id, inside SageMaker's 63-character rule (spec §12 #7)."""
    try:
        payload = json.loads(job.service_request_payload)
        base = payload.get("TrainingJobName") if isinstance(payload, dict) else None
    except ValueError:
        base = None
    name = _UNSAFE.sub("-", str(base or job.job_name))[:23].strip("-")
    return f"AWSBatch{name}{attempt_id}"


def _with_fields(job: ServiceJob, fields: dict[str, Any]) -> ServiceJob:
    return dataclasses.replace(job, **fields)


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
        # Full jobs are held only while they have a training job in flight (bounded by
        # capacity) or await admission; RUNNABLE jobs live in the planner index as small views
        # and are read from the store when a decision touches them.
        self._live: dict[str, ServiceJob] = {}
        self._submitted = PendingAdmissions()
        self._fresh: dict[str, ServiceJob] = {}  # admitted this cycle, not yet committed
        self._training: dict[str, TrainingJob] = {}  # records of live training jobs
        self._changed: dict[str, ServiceJob] = {}  # changed since the last commit
        self._trained: dict[str, TrainingJob] = {}
        self._admitted: list[str] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        # Only the leader schedules; other replicas serve the API and forward job changes.
        self.leading = False
        self._ingested_at = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, loop: bool = True) -> None:
        """Take the lead if it is free (rebuilding state from the store), then run the loop."""
        await self._follow_or_lead()
        if loop:
            self._task = asyncio.create_task(self._run(), name="batchd-runtime")

    async def _follow_or_lead(self) -> None:
        leading = await self.store.lease.hold()
        if leading and not self.leading:
            async with self._lock:
                await self._rebuild()
        elif not leading and self.leading:
            log.warning("no longer the scheduling leader; another replica schedules now")
        self.leading = leading

    async def _rebuild(self) -> None:
        self.planning = Planning(self.store, self.arns, self.default_backend)
        await self.planning.reload()
        for held in (self._live, self._submitted, self._fresh, self._training, self._changed):
            held.clear()
        self._trained.clear()
        self._admitted.clear()
        async for job in self.store.stream_active_jobs():
            if job.status is JobStatus.SUBMITTED:
                self._submitted.put(job)
                continue
            self.planning.add(job)
            if job.current is not None:
                self._live[job.job_id] = job
                name = job.current.training_job_name
                record = await self.store.training_job(name)
                self._training[name] = record or training.created(job, job.current.scheduled_at)

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
            # Let a burst of wakes (a submit storm) gather into one cycle.
            await asyncio.sleep(_COALESCE_SECONDS)
            self._wake.clear()
            try:
                await self._follow_or_lead()
                if self.leading:
                    await self.tick(self.clock.now_ms())
            except Exception:  # keep scheduling; the next tick starts from durable state
                log.exception("scheduling cycle failed; rebuilding state from the database")
                await asyncio.sleep(self.tick_seconds)
                async with self._lock:
                    await self._rebuild()

    # -- the cycle ---------------------------------------------------------------------------

    async def tick(self, now: int) -> None:
        """Run exactly one cycle at time ``now``."""
        async with self._lock:
            self.ticks += 1
            await self._ingest(now)
            for progress in await self._poll():
                self._fold(progress, now)
            self._admit()
            decisions = self.planning.plan(now)
            await self._load([d.job_id for d in decisions])
            actions: list[Action] = []
            for decision in decisions:
                action = self._decide(decision, now)
                if action is not None:
                    actions.append(action)
            self._fresh.clear()
            await self._commit()
            await self._act(actions, now)
            if self._changed or self._trained:  # launch failures: record them, plan again
                await self._commit()
                self.wake()

    async def _ingest(self, now: int) -> None:
        """Apply what follower replicas asked for, and admit the jobs they accepted."""
        if now - self._ingested_at < _INGEST_EVERY_MS:
            return  # what followers accept is read in batches
        self._ingested_at = now
        for kind, job_id, body in await self.store.take_requests():
            if kind == "reload":
                await self.planning.reload()
            elif kind == "terminate" and job_id:
                await self._terminate(job_id, str(body.get("reason", "")))
            elif kind == "stop":
                await self._stop_training_job(str(body.get("name", "")))
            elif kind == "update" and job_id:
                fields = {k: v for k, v in body.items() if k in _FORWARDABLE}
                await self._update(job_id, functools.partial(_with_fields, fields=fields))
        # Most SUBMITTED jobs were accepted here and are already pending: read whole only
        # the ones another replica accepted.
        ids = await self.store.submitted_job_ids()
        foreign = [i for i in ids if i not in self._submitted and i not in self.planning.index]
        if foreign:
            found = await self.store.jobs(foreign)
            for job_id in foreign:  # oldest first, as listed
                job = found.get(job_id)
                if job is not None and job.status is JobStatus.SUBMITTED:
                    self._submitted.put(job)

    def _current(self, job_id: str) -> ServiceJob | None:
        """The newest in-memory version of an active job, if it is held."""
        return (
            self._changed.get(job_id)
            or self._live.get(job_id)
            or self._fresh.get(job_id)
            or self._submitted.get(job_id)
        )

    async def _load(self, job_ids: Sequence[str]) -> None:
        """Bring the jobs a decision touches into memory for this cycle."""
        missing = [j for j in job_ids if self._current(j) is None]
        if missing:
            self._fresh.update(await self.store.jobs(missing))

    async def _poll(self) -> list[Progress]:
        by_backend: dict[str, list[str]] = {}
        for name, job_id in self.planning.live_training_jobs().items():
            job = self._live.get(job_id)
            if job is not None and job.current is not None:
                by_backend.setdefault(job.current.backend, []).append(name)
        found: list[Progress] = []
        for backend, names in by_backend.items():
            found.extend(await self.backends[backend].poll(names))
        return found

    def _fold(self, progress: Progress, now: int) -> None:
        name = progress.training_job_name
        job_id = self.planning.job_of_training_job(name)
        job = self._live.get(job_id) if job_id else None
        record = self._training.get(name)
        if record is not None:
            self._record(training.observed(record, progress, now))
        if job is not None:
            self._change(job, outcomes.after_progress(job, progress, now), now)

    def _admit(self) -> None:
        """SUBMITTED -> RUNNABLE: the status column flips in bulk; documents stay as they are."""
        for job in self._submitted.drain():
            if job.job_id in self.planning.index:
                continue  # already admitted: found in the store before its submitter said so
            admitted = job.with_status(JobStatus.RUNNABLE)
            self._fresh[job.job_id] = admitted
            self.planning.add(admitted)
            self._admitted.append(job.job_id)

    def _change(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        """Record a job's new state in memory and in the planner index, to be committed."""
        if new == old:
            return
        self.planning.released(old, new, now)
        self._changed[new.job_id] = new
        if new.current is not None:
            self._live[new.job_id] = new
        else:
            self._live.pop(new.job_id, None)
        if new.terminal:
            self.planning.remove(new)
        else:
            self.planning.replace(new)

    def _record(self, record: TrainingJob) -> None:
        name = record.training_job_name
        if self._training.get(name) == record:
            return
        self._trained[name] = record
        if record.training_job_status in ("Completed", "Failed", "Stopped"):
            self._training.pop(name, None)
        else:
            self._training[name] = record

    async def _commit(self) -> None:
        changed, trained = list(self._changed.values()), list(self._trained.values())
        admitted = self._admitted
        self._changed.clear()
        self._trained.clear()
        self._admitted = []
        await self.store.save_jobs(changed, trained, admitted)

    def _decide(self, decision: Decision, now: int) -> Action | None:
        job = self._current(decision.job_id)
        if job is None:
            return None
        new, action = self._decided(job, decision, now)
        self._change(job, new, now)
        if new.current is not None and new.current is not job.current:
            record = self._training.get(new.current.training_job_name)
            if record is None:
                self._record(training.created(new, now))
            elif new.current.stop_kind:
                self._record(training.stopping(record, now))
        return action

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
            return dataclasses.replace(
                job, status_reason=decision.reason, blocked_since=since
            ), None
        if kind == "unblock" and job.status is JobStatus.RUNNABLE:
            return dataclasses.replace(job, status_reason=None, blocked_since=None), None
        if kind == "time-limit" and job.status is JobStatus.RUNNABLE:
            return outcomes.terminated_queued(job, decision.reason, now), None
        if kind in ("preempt", "timeout") and job.current and job.current.stop_kind is None:
            current = dataclasses.replace(job.current, stop_kind=kind, stop_reason=decision.reason)
            reason = decision.reason if kind == "preempt" else job.status_reason
            return dataclasses.replace(job, current=current, status_reason=reason), Action(
                "stop", job.job_id
            )
        return job, None

    def _dispatched(self, job: ServiceJob, environment: str, backend: str, now: int) -> ServiceJob:
        """A RUNNABLE job becomes SCHEDULED with a new training job."""
        attempt_id = self.ids.attempt_id()
        name = training_job_name(job, attempt_id)
        arn = self.arns.training_job(name)
        return dataclasses.replace(
            job,
            status=job.status.checked(JobStatus.SCHEDULED),
            status_reason=None,
            scheduled_at=now,
            started_at=None,
            # Time in failed capacity attempts accumulates toward a CAPACITY time limit (§5.4).
            blocked_since=job.blocked_since if job.capacity_failed else None,
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

    async def _act(self, actions: Sequence[Action], now: int) -> None:
        """Start and stop training jobs, after the decisions are committed."""
        for action in actions:
            job = self._live.get(action.job_id)
            if job is None or job.current is None:
                continue
            backend = self.backends[job.current.backend]
            if action.kind == "stop":
                await backend.stop(job.current.training_job_name)
                continue
            try:
                await backend.start(self._launch_spec(job))
            except LaunchError as err:
                self._launch_failed(job, err.code, err.message, now)
            except Exception as err:  # a backend bug must not wedge the job
                log.exception("backend %s failed to start %s", backend.name, job.job_id)
                self._launch_failed(job, "InternalServerError", str(err), now)

    def _launch_failed(self, job: ServiceJob, code: str, message: str, now: int) -> None:
        assert job.current is not None
        record = self._training.get(job.current.training_job_name)
        if record is not None:
            self._record(training.launch_failed(record, code, message, now))
        self._change(job, outcomes.failed_to_launch(job, code, message, now), now)

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

    # -- JobControl: what the API asks of the runtime ----------------------------------------

    async def submitted(self, job: ServiceJob) -> None:
        # No lock: a dict insert between awaits is atomic on the event loop, and a submit
        # storm must not queue behind a cycle that is committing.
        if self.leading and job.status is JobStatus.SUBMITTED:
            self._submitted.put(job)
            self.wake()

    def submitted_count(self, queue: str) -> int | None:
        """Jobs of ``queue`` awaiting admission, when this replica knows (it leads)."""
        return self._submitted.count(queue) if self.leading else None

    async def _held_or_stored(self, job_id: str) -> ServiceJob | None:
        return self._current(job_id) or await self.store.job(job_id)

    async def terminate(self, job_id: str, reason: str) -> None:
        if not self.leading:
            await self.store.request("terminate", job_id, {"reason": reason})
            return
        async with self._lock:
            await self._terminate(job_id, reason)
        self.wake()

    async def _terminate(self, job_id: str, reason: str) -> None:
        job = await self._held_or_stored(job_id)
        if job is None or job.terminal:
            return  # TerminateServiceJob of a finished job is a no-op (spec §5.3)
        now = self.clock.now_ms()
        self._submitted.pop(job_id)
        if job.current is None:
            self._change(job, outcomes.terminated_queued(job, reason, now), now)
            await self._commit()
        elif job.current.stop_kind != "terminate":
            current = dataclasses.replace(job.current, stop_kind="terminate", stop_reason=reason)
            self._change(job, dataclasses.replace(job, current=current), now)
            record = self._training.get(current.training_job_name)
            if record is not None:
                self._record(training.stopping(record, now))
            await self._commit()
            await self.backends[current.backend].stop(current.training_job_name)

    async def stop_training_job(self, name: str) -> None:
        """SageMaker's StopTrainingJob: the attempt ends Stopped and retries as configured."""
        if not self.leading:
            await self.store.request("stop", None, {"name": name})
            return
        async with self._lock:
            await self._stop_training_job(name)
        self.wake()

    async def _stop_training_job(self, name: str) -> None:
        job_id = self.planning.job_of_training_job(name)
        job = self._live.get(job_id) if job_id else None
        if job is None or job.current is None:
            return
        record = self._training.get(name)
        if record is not None:
            self._record(training.stopping(record, self.clock.now_ms()))
            await self._commit()
        await self.backends[job.current.backend].stop(name)

    async def update(self, job_id: str, change: Callable[[ServiceJob], ServiceJob]) -> ServiceJob:
        if not self.leading:
            return await self._forward_update(job_id, change)
        async with self._lock:
            new = await self._update(job_id, change)
        self.wake()
        return new

    async def _update(self, job_id: str, change: Callable[[ServiceJob], ServiceJob]) -> ServiceJob:
        job = await self._held_or_stored(job_id)
        if job is None:
            raise NotFound(f"Service job {job_id} not found")
        new = change(job)
        if job_id in self._submitted:
            self._submitted.put(new)
        if job.terminal:
            await self.store.save_jobs([new])
        else:
            self._change(job, new, self.clock.now_ms())
            await self._commit()
        return new

    async def _forward_update(
        self, job_id: str, change: Callable[[ServiceJob], ServiceJob]
    ) -> ServiceJob:
        """On a follower: validate against the stored job, let the leader apply the change."""
        job = await self.store.job(job_id)
        if job is None:
            raise NotFound(f"Service job {job_id} not found")
        new = change(job)
        fields = {
            name: getattr(new, name)
            for name in _FORWARDABLE
            if getattr(new, name) != getattr(job, name)
        }
        if fields:
            await self.store.request("update", job_id, fields)
        return new

    async def configuration_changed(self) -> None:
        if not self.leading:
            await self.store.request("reload", None, {})
            return
        async with self._lock:
            await self.planning.reload()
        self.wake()

    async def terminate_queued(
        self, reason: str, queue: str, quota_share: str | None = None
    ) -> None:
        """End every job of a deleted queue or quota share (spec §12 #26)."""
        doomed = await self.store.active_job_ids(queue, quota_share)
        for job_id in doomed:
            await self.terminate(job_id, reason)

    async def snapshot(self, queue: JobQueue) -> Mapping[str, Any]:
        if not self.leading:
            # A follower has no index: build one for this queue alone from the store.
            planning = Planning(self.store, self.arns, self.default_backend)
            await planning.reload()
            async for job in self.store.stream_active_jobs(queue.job_queue_name):
                planning.add(job)
            return planning.snapshot(queue, self.clock.now_ms())
        async with self._lock:
            return self.planning.snapshot(queue, self.clock.now_ms())
