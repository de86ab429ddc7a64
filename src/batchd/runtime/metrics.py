"""What the scheduler counts for ``GET /metrics``: finished jobs, failed attempts by cause,
preemptions by kind, waits from RUNNABLE to dispatch, and the length of each cycle.

Counted where a job changes (``observe_change``), by the replica that schedules. Labels are
queues, shares and closed sets, never job ids. Under ``serve --workers N`` prometheus_client
keeps these in the multiprocess directory like the request counters, so any worker's scrape
sums them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from batchd.domain.jobs import ServiceJob
from batchd.domain.status import JobStatus
from batchd.runtime.outcomes import LOST, STOPPED, TIMEOUT
from batchd.scheduling.reasons import IN_SHARE_PREEMPTION, PREEMPTION_PREFIX

__all__ = ["RuntimeMetrics", "failure_cause"]

# From seconds to days: training jobs wait behind others for hours.
_WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)
_CYCLE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_IN_SHARE = IN_SHARE_PREEMPTION.removeprefix(PREEMPTION_PREFIX)


def failure_cause(reason: str) -> str:
    """A failed attempt's cause, from its statusReason: a bounded label."""
    if TIMEOUT in reason:
        return "timeout"
    if LOST in reason or "is not running on this server" in reason:
        return "lost"
    if reason.startswith(STOPPED):
        return "stopped"
    if "CapacityError" in reason or reason.startswith("CAPACITY:"):
        return "capacity"
    return "algorithm_error"


class RuntimeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.finished = Counter(
            "batchd_jobs_finished",
            "Service jobs that ended, by job queue and final status.",
            ["queue", "status"],
            registry=self.registry,
        )
        self.attempts_failed = Counter(
            "batchd_attempts_failed",
            "Attempts that did not complete, by job queue and cause "
            "(algorithm_error, capacity, timeout, lost, stopped).",
            ["queue", "reason"],
            registry=self.registry,
        )
        self.preemptions = Counter(
            "batchd_preemptions",
            "Attempts preempted, by job queue and kind (cross_share, in_share).",
            ["queue", "kind"],
            registry=self.registry,
        )
        self.admission_wait = Histogram(
            "batchd_admission_wait_seconds",
            "Time from RUNNABLE to SCHEDULED, by job queue and share.",
            ["queue", "share"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.cycle = Histogram(
            "batchd_scheduler_cycle_seconds",
            "Duration of one scheduling cycle.",
            buckets=_CYCLE_BUCKETS,
            registry=self.registry,
        )

    def observe_change(self, old: ServiceJob, new: ServiceJob, now: int) -> None:
        queue = new.queue_name
        if new.terminal and not old.terminal:
            self.finished.labels(queue, new.status.value).inc()
        for attempt in new.attempts[len(old.attempts) :]:
            reason = attempt.status_reason or ""
            if not reason.endswith("Training job completed"):
                self.attempts_failed.labels(queue, failure_cause(reason)).inc()
        if new.capacity_failed and not old.capacity_failed:
            self.attempts_failed.labels(queue, "capacity").inc()
        self._preempted(old, new, queue)
        if old.status is JobStatus.RUNNABLE and new.status is JobStatus.SCHEDULED:
            share = new.share_identifier or new.quota_share_name or ""
            self.admission_wait.labels(queue, share).observe(
                max(0.0, (now - _runnable_since(old)) / 1000)
            )

    def _preempted(self, old: ServiceJob, new: ServiceJob, queue: str) -> None:
        before = old.preemption_summary.preempted_attempt_count if old.preemption_summary else 0
        after = new.preemption_summary.preempted_attempt_count if new.preemption_summary else 0
        if after > before and old.current is not None:
            kind = "in_share" if old.current.stop_reason == _IN_SHARE else "cross_share"
            self.preemptions.labels(queue, kind).inc(after - before)


def _runnable_since(job: ServiceJob) -> int:
    """When the job last became RUNNABLE: its submission, or the end of its last attempt."""
    ends = [a.stopped_at for a in job.attempts if a.stopped_at is not None]
    summary = job.preemption_summary
    if summary is not None:
        ends += [p.stopped_at for p in summary.recent_preempted_attempts if p.stopped_at]
    return max([job.created_at, *ends])
