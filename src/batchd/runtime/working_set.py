"""The jobs the runtime holds in memory, and what it has changed but not yet committed.

A job is held while it has a training job in flight (so at most what capacity allows), and
from the moment a decision or a request touches it until the commit that records it. Queued
RUNNABLE jobs are otherwise only planner views and are read from the store when a decision
touches them; SUBMITTED jobs wait in ``submitted`` until the next admission.

A live job is polled at every cycle unless it is quiet: RUNNING on a backend that promised
its training job reports TRAINING again until some time (``Steady``). Folding that report
would change nothing, so the job is left out until the time comes or the job changes (a
stop, a timeout or a terminate changes it before the backend hears of it).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batchd.domain.jobs import ServiceJob
from batchd.domain.training import TrainingJob
from batchd.runtime.admissions import PendingAdmissions

__all__ = ["Commit", "WorkingSet"]

_ENDED = frozenset({"Completed", "Failed", "Stopped"})


@dataclass(frozen=True)
class Commit:
    """Everything one transaction writes."""

    changed: list[ServiceJob]
    trained: list[TrainingJob]
    admitted: list[str]
    done_mail: list[int]

    def __bool__(self) -> bool:
        return bool(self.changed or self.trained or self.admitted or self.done_mail)


class WorkingSet:
    def __init__(self) -> None:
        self.submitted = PendingAdmissions()
        self._jobs: dict[str, ServiceJob] = {}
        self._by_training_job: dict[str, str] = {}
        self._changed: set[str] = set()
        self._transient: set[str] = set()  # held only until the next commit
        self._admitted: list[str] = []
        self._done_mail: list[int] = []
        self._records: dict[str, TrainingJob] = {}  # training jobs in flight
        self._unsaved: dict[str, TrainingJob] = {}
        self._polled: dict[str, None] = {}  # live jobs that are not quiet, in order
        self._quiet: dict[str, int] = {}  # job id -> until when
        self._quiet_ends: list[tuple[int, str]] = []  # (until, job id); stale ones too

    def clear(self) -> None:
        self.submitted.clear()
        for held in (
            self._jobs,
            self._by_training_job,
            self._records,
            self._unsaved,
            self._polled,
            self._quiet,
        ):
            held.clear()
        self._quiet_ends.clear()
        self._changed.clear()
        self._transient.clear()
        self._admitted.clear()
        self._done_mail.clear()

    # -- jobs ------------------------------------------------------------------------------

    def get(self, job_id: str) -> ServiceJob | None:
        """The newest version of a job the runtime holds, if it holds it."""
        return self._jobs.get(job_id) or self.submitted.get(job_id)

    def missing(self, job_ids: Iterable[str]) -> list[str]:
        return [j for j in job_ids if self.get(j) is None]

    def hold(self, jobs: Mapping[str, ServiceJob]) -> None:
        """Jobs read from the store for this cycle; a version already held wins."""
        for job_id, job in jobs.items():
            if job_id not in self._jobs:
                self._put(job)
                self._track(None, job)

    def admit(self, job: ServiceJob) -> None:
        """A job that became RUNNABLE; only its status column is written."""
        self._put(job)
        self._admitted.append(job.job_id)

    def change(self, old: ServiceJob, new: ServiceJob) -> bool:
        """Record ``new`` to be committed; False when nothing changed."""
        if new is old or new == old:
            return False
        self._put(new)
        self._changed.add(new.job_id)
        self._track(old, new)
        return True

    def _put(self, job: ServiceJob) -> None:
        self._jobs[job.job_id] = job
        self._quiet.pop(job.job_id, None)
        if job.current is None:
            self._transient.add(job.job_id)
            self._polled.pop(job.job_id, None)
        else:
            self._polled[job.job_id] = None

    def _track(self, old: ServiceJob | None, new: ServiceJob) -> None:
        before = old.current if old is not None else None
        if before is not None and (
            new.current is None or new.current.attempt_id != before.attempt_id
        ):
            self._by_training_job.pop(before.training_job_name, None)
        if new.current is not None:
            self._by_training_job[new.current.training_job_name] = new.job_id

    def to_poll(self, now: int) -> list[ServiceJob]:
        """Jobs with a training job in flight, but for those still quiet at ``now``."""
        ends = self._quiet_ends
        while ends and ends[0][0] <= now:
            until, job_id = heapq.heappop(ends)
            if self._quiet.get(job_id) == until:
                del self._quiet[job_id]
                self._polled[job_id] = None
        return [self._jobs[job_id] for job_id in self._polled]

    def polls_due(self, now: int) -> bool:
        """Whether ``to_poll(now)`` may hold a job (it may be empty even so)."""
        return bool(self._polled) or bool(self._quiet_ends and self._quiet_ends[0][0] <= now)

    def quiet(self, job_id: str, until: int) -> None:
        """Leave the job out of polls before ``until``, unless it changes first."""
        if job_id in self._polled:
            del self._polled[job_id]
            self._quiet[job_id] = until
            heapq.heappush(self._quiet_ends, (until, job_id))

    def job_of_training_job(self, name: str) -> ServiceJob | None:
        job_id = self._by_training_job.get(name)
        return self._jobs.get(job_id) if job_id is not None else None

    # -- training jobs -----------------------------------------------------------------------

    def training_job(self, name: str) -> TrainingJob | None:
        return self._records.get(name)

    def track_training_job(self, record: TrainingJob) -> None:
        """A record read from the store at start: in flight, nothing to write."""
        self._records[record.training_job_name] = record

    def record(self, record: TrainingJob) -> None:
        """A training job's new state, to be committed with the jobs."""
        name = record.training_job_name
        if self._records.get(name) == record:
            return
        self._unsaved[name] = record
        if record.training_job_status in _ENDED:
            self._records.pop(name, None)
        else:
            self._records[name] = record

    # -- committing --------------------------------------------------------------------------

    def done_with(self, mail_id: int) -> None:
        """A follower's request whose effect the next commit writes: removed with it."""
        self._done_mail.append(mail_id)

    def take_commit(self) -> Commit:
        """What to write now; jobs with nothing in flight are let go once it is written."""
        changed = self._changed
        commit = Commit(
            [self._jobs[j] for j in changed],
            list(self._unsaved.values()),
            # A job admitted and then changed in one cycle is written whole, status and all.
            [j for j in self._admitted if j not in changed] if changed else self._admitted,
            self._done_mail,
        )
        self._changed.clear()
        self._unsaved.clear()
        self._admitted = []
        self._done_mail = []
        for job_id in self._transient:
            job = self._jobs.get(job_id)
            if job is not None and job.current is None:
                del self._jobs[job_id]
                self._polled.pop(job_id, None)
        self._transient.clear()
        return commit
