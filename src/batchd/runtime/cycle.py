"""One scheduling cycle, in named steps.

``ingest`` what other replicas asked for; ``fold`` the backends' progress into the jobs;
``admit`` SUBMITTED jobs; ``decide``: ask the pure planner for a plan and apply each typed
decision; commit every change in one transaction; only then ``act`` on the backends. Acting
after the commit means a crash can lose an action but never the record of it: a job marked
SCHEDULED whose training job never started is reported lost on restart and retried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from batchd.backends.base import LaunchError, Progress, TrainingPhase
from batchd.domain.jobs import CurrentAttempt, ServiceJob
from batchd.domain.status import JobStatus
from batchd.runtime import control, decisions, outcomes, training
from batchd.runtime.core import Core
from batchd.runtime.decisions import Action, Start, Stop

__all__ = ["Cycle", "Outcome"]

log = logging.getLogger("batchd.runtime")

# What followers accept is read in batches, not on every cycle of a submit storm.
_INGEST_EVERY_MS = 50


@dataclass(frozen=True)
class Outcome:
    changed: bool  # a job or training job changed, or a backend was asked to act
    launches_failed: bool  # their jobs are RUNNABLE again: plan once more
    # Another cycle at the same time would change nothing: its plan would see what this one's
    # saw (a pure function of the same state and time), with no job to poll or admit.
    settled: bool = False


class Cycle:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._ingested_at = 0

    async def run(self, now: int) -> Outcome:
        """One cycle at ``now``."""
        await self.ingest(now)
        self.fold(await self.core.poll(self.core.jobs.to_poll(now)), now)
        self.admit()
        before = self.core.changes
        actions = await self.decide(now)
        decided = self.core.changes != before
        committed = await self.core.commit()
        await self.act(actions, now)
        failed = await self.core.commit()
        jobs = self.core.jobs
        settled = not (decided or actions or failed or jobs.submitted or jobs.polls_due(now))
        return Outcome(
            changed=committed or bool(actions) or failed, launches_failed=failed, settled=settled
        )

    async def ingest(self, now: int) -> None:
        """Apply what follower replicas asked for, and take in the jobs they accepted."""
        if now - self._ingested_at < _INGEST_EVERY_MS or self.core.store.private:
            return  # (a private store has no other replica to forward anything)
        self._ingested_at = now
        store, jobs = self.core.store, self.core.jobs
        await control.apply_all(self.core, await store.mailbox.read())
        # Most SUBMITTED jobs were accepted here and are already pending: read whole only
        # the ones another replica accepted.
        ids = await store.job_reads.submitted_ids()
        foreign = [i for i in ids if i not in jobs.submitted and i not in self.core.planning]
        if foreign:
            found = await store.job_reads.get_many(foreign)
            for job_id in foreign:  # oldest first, as listed
                job = found.get(job_id)
                if job is not None and job.status is JobStatus.SUBMITTED:
                    jobs.submitted.put(job)

    def fold(self, progress: Sequence[Progress], now: int) -> None:
        for report in progress:
            try:
                self._fold(report, now)
            except Exception:  # one bad report must not stop the cycle for every job
                log.exception("could not apply the report on %s", report.training_job_name)

    def _fold(self, report: Progress, now: int) -> None:
        name = report.training_job_name
        record = self.core.jobs.training_job(name)
        if record is not None:
            self.core.record(training.observed(record, report, now))
        job = self.core.jobs.job_of_training_job(name)
        if job is not None:
            self.core.change(job, outcomes.after_progress(job, report, now), now)
            if report.phase is TrainingPhase.TRAINING:
                self.core.quiet_if_steady(job.job_id, now)

    def admit(self) -> None:
        """SUBMITTED -> RUNNABLE: the status column flips in bulk; documents stay as they are."""
        for job in self.core.jobs.submitted.drain():
            if job.job_id in self.core.planning:
                continue  # already admitted: found in the store before its submitter said so
            admitted = job.with_status(JobStatus.RUNNABLE)
            self.core.jobs.admit(admitted)
            self.core.planning.add(admitted)

    async def decide(self, now: int) -> list[Action]:
        core, jobs = self.core, self.core.jobs
        plan = core.planning.plan(now)
        missing = jobs.missing(d.job_id for d in plan)
        if missing:  # queued jobs live as planner views: read the ones decided on
            jobs.hold(await core.store.job_reads.get_many(missing))

        def new_attempt(job: ServiceJob, environment: str) -> CurrentAttempt:
            return core.new_attempt(job, environment, now)

        actions: list[Action] = []
        for decision in plan:
            job = jobs.get(decision.job_id)
            if job is None:
                continue
            new, action = decisions.apply(job, decision, now, new_attempt)
            core.change(job, new, now)
            self._track_training_job(job, new, now)
            if action is not None:
                actions.append(action)
        return actions

    def _track_training_job(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        if new.current is None or new.current is old.current:
            return
        if self.core.jobs.training_job(new.current.training_job_name) is None:
            self.core.record(training.created(new, now))
        elif new.current.stop_kind is not None:
            self.core.stopping(new, now)

    async def act(self, actions: Sequence[Action], now: int) -> None:
        """Start and stop training jobs, after the decisions are committed."""
        for action in actions:
            job = self.core.jobs.get(action.job_id)
            if job is None or job.current is None:
                continue
            match action:
                case Start():
                    await self._start(job, now)
                case Stop():
                    await self.core.stop(job)

    async def _start(self, job: ServiceJob, now: int) -> None:
        assert job.current is not None
        name = job.current.backend
        backend = self.core.backends.get(name)
        if backend is None:
            message = self.core.missing_backend(name, job.current.environment)
            self._launch_failed(job, "ValidationException", message, now)
            return
        try:
            await backend.start(self.core.launch_spec(job))
        except LaunchError as err:
            self._launch_failed(job, err.code, err.message, now)
        except Exception as err:  # a backend bug must not wedge the job
            log.exception("backend %s failed to start %s", name, job.job_id)
            self._launch_failed(job, "InternalServerError", str(err), now)

    def _launch_failed(self, job: ServiceJob, code: str, message: str, now: int) -> None:
        assert job.current is not None
        record = self.core.jobs.training_job(job.current.training_job_name)
        if record is not None:
            self.core.record(training.launch_failed(record, code, message, now))
        self.core.change(job, outcomes.failed_to_launch(job, code, message, now), now)
