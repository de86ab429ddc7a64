"""What every step of the runtime works on: the store, the jobs held, the planner's state and
the backends; with the few primitives they share (change a job, commit, reach a backend).

Whatever goes wrong with one backend is contained here: a backend that is not configured, or
raises, fails or leaves alone the jobs it runs, and never the cycle for everyone else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from batchd.backends.base import (
    Adopting,
    Backend,
    LaunchSpec,
    Progress,
    Scheduled,
    Steady,
    TrainingPhase,
)
from batchd.clock import Clock, Ids
from batchd.domain.arns import Arns
from batchd.domain.jobs import CurrentAttempt, ServiceJob
from batchd.domain.resources import BACKEND_TAG
from batchd.domain.status import JobStatus
from batchd.domain.training import TrainingJob
from batchd.runtime import training
from batchd.runtime.configuration import load_configuration
from batchd.runtime.metrics import RuntimeMetrics
from batchd.runtime.planning import Planning
from batchd.runtime.working_set import WorkingSet
from batchd.storage.lease import Deposed
from batchd.storage.store import Store

__all__ = ["Core", "training_job_name"]

log = logging.getLogger("batchd.runtime")

_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def training_job_name(job: ServiceJob, attempt_id: str) -> str:
    """``AWSBatch`` + name + attempt id, inside SageMaker's 63-character rule (spec §12 #7)."""
    base = job.payload.get("TrainingJobName")
    name = _UNSAFE.sub("-", str(base or job.job_name))[:23].strip("-")
    return f"AWSBatch{name}{attempt_id}"


class Core:
    def __init__(
        self,
        store: Store,
        arns: Arns,
        clock: Clock,
        ids: Ids,
        backends: Mapping[str, Backend],
        default_backend: str,
    ) -> None:
        self.store = store
        self.arns = arns
        self.clock = clock
        self.ids = ids
        self.backends = backends
        # Protocol checks walk the class each time: done once, they cost nothing per cycle.
        self.steady = {n: b for n, b in backends.items() if isinstance(b, Steady)}
        self.scheduled = [b for b in backends.values() if isinstance(b, Scheduled)]
        self.default_backend = default_backend
        self.jobs = WorkingSet()
        self.planning = Planning(default_backend)
        self.metrics = RuntimeMetrics()
        self.changes = 0  # jobs changed so far, to tell whether a step changed any

    # -- state from the store ----------------------------------------------------------------

    async def reload(self) -> None:
        """Read the configuration again (a resource or a tag changed)."""
        self.planning.configure(
            await load_configuration(self.store, self.arns, self.default_backend)
        )

    async def rebuild(self) -> None:
        """Forget everything held and start again from the store (on taking the lead)."""
        self.jobs.clear()
        self.planning = Planning(self.default_backend)
        await self.reload()
        async for job in self.store.job_reads.stream_active():
            if job.status is JobStatus.SUBMITTED:
                self.jobs.submitted.put(job)
                continue
            self.planning.add(job)
            if job.current is not None:
                self.jobs.hold({job.job_id: job})
                name = job.current.training_job_name
                record = await self.store.training_jobs.get(name)
                self.jobs.track_training_job(
                    record or training.created(job, job.current.scheduled_at)
                )
                await self._adopt(job)

    async def _adopt(self, job: ServiceJob) -> None:
        """Take over a training job in flight, where its backend can; elsewhere the next poll
        reports it lost and it is retried (a local process belongs to the host that ran it)."""
        assert job.current is not None
        backend = self.backends.get(job.current.backend)
        if isinstance(backend, Adopting):
            current = job.current
            await backend.adopt(self.launch_spec(job), current.scheduled_at, current.started_at)

    async def held_or_stored(self, job_id: str) -> ServiceJob | None:
        job = self.jobs.get(job_id)
        if job is None:
            found = await self.store.job_reads.get_many([job_id])
            self.jobs.hold(found)
            job = found.get(job_id)
        return job

    # -- changing jobs -----------------------------------------------------------------------

    def change(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        """Record a job's new state, to be committed, and tell the planner."""
        if self.jobs.change(old, new):
            self.changes += 1
            self.planning.changed(old, new, now)
            self.metrics.observe_change(old, new, now)

    def stopping(self, job: ServiceJob, now: int) -> None:
        """The job's training job is being stopped: SageMaker shows it Stopping."""
        assert job.current is not None
        record = self.jobs.training_job(job.current.training_job_name)
        if record is not None:
            self.jobs.record(training.stopping(record, now))

    def record(self, record: TrainingJob) -> None:
        self.jobs.record(record)

    async def commit(self) -> bool:
        """Write what changed in one transaction; False when there was nothing to write."""
        commit = self.jobs.take_commit()
        if commit:
            epoch = self.store.lease.epoch
            if epoch is None:  # the lease went since this replica last looked: write nothing
                raise Deposed(0, None)
            await self.store.job_writes.save(
                commit.changed,
                commit.trained,
                commit.admitted,
                commit.done_mail,
                epoch=epoch,
            )
        return bool(commit)

    # -- attempts ----------------------------------------------------------------------------

    def new_attempt(self, job: ServiceJob, environment: str, now: int) -> CurrentAttempt:
        attempt_id = self.ids.attempt_id()
        name = training_job_name(job, attempt_id)
        return CurrentAttempt(
            attempt_id=attempt_id,
            training_job_name=name,
            training_job_arn=self.arns.training_job(name),
            environment=environment,
            backend=self.planning.backend_of(environment),
            scheduled_at=now,
        )

    def launch_spec(self, job: ServiceJob) -> LaunchSpec:
        assert job.current is not None
        return LaunchSpec(
            job_id=job.job_id,
            job_arn=job.job_arn,
            attempt_id=job.current.attempt_id,
            training_job_name=job.current.training_job_name,
            training_job_arn=job.current.training_job_arn,
            payload=job.payload,
            tags=job.tags,
            region=self.arns.region,
            account_id=self.arns.account_id,
            queue=job.queue_name,
            attempt_duration_seconds=(
                job.timeout_config.attempt_duration_seconds if job.timeout_config else None
            ),
        )

    # -- backends, one at a time -------------------------------------------------------------

    def missing_backend(self, name: str, environment: str) -> str:
        """Why a job cannot run on ``name``: what it is, and what to do about it."""
        return (
            f"service environment {environment} runs its jobs on backend {name!r} (its "
            f"{BACKEND_TAG} tag), which this server does not have; it has: "
            f"{', '.join(sorted(self.backends))}"
        )

    async def poll(self, live: Sequence[ServiceJob]) -> list[Progress]:
        """How each live training job is doing, backend by backend."""
        by_backend: dict[str, list[str]] = {}
        for job in live:
            assert job.current is not None
            by_backend.setdefault(job.current.backend, []).append(job.current.training_job_name)
        found: list[Progress] = []
        for name, names in by_backend.items():
            backend = self.backends.get(name)
            if backend is None:  # its training jobs cannot be reached: they are lost
                reason = f"InternalServerError: backend {name!r} is not running on this server"
                found.extend(Progress(n, TrainingPhase.LOST, failure_reason=reason) for n in names)
                continue
            try:
                found.extend(await backend.poll(names))
            except Exception:
                log.exception(
                    "backend %s failed to report on %d training jobs; asking again next cycle",
                    name,
                    len(names),
                )
        return found

    def quiet_if_steady(self, job_id: str, now: int) -> None:
        """After a TRAINING report: stop polling the job while its backend promises that
        every poll would find it TRAINING again. Only a RUNNING job whose training job shows
        Training, with no stop asked for, is left alone: that report changes nothing of it."""
        job = self.jobs.get(job_id)
        if job is None or job.current is None or job.status is not JobStatus.RUNNING:
            return
        if job.current.stop_kind is not None:
            return
        name = job.current.training_job_name
        record = self.jobs.training_job(name)
        if record is None or record.secondary_status != "Training":
            return
        backend = self.steady.get(job.current.backend)
        if backend is not None:
            until = backend.steady_until(name)
            if until is not None and until > now:
                self.jobs.quiet(job_id, until)

    async def stop(self, job: ServiceJob) -> None:
        """Ask the job's backend to stop its training job; it reports STOPPED through poll."""
        assert job.current is not None
        name = job.current.training_job_name
        backend = self.backends.get(job.current.backend)
        if backend is None:
            return  # nothing of it runs anywhere: poll reports it lost
        try:
            await backend.stop(name)
        except Exception:
            log.exception("backend %s failed to stop training job %s", backend.name, name)
