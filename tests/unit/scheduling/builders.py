"""Plain-data builders and a tiny in-memory runtime for planner tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from batchd.scheduling import (
    AttemptTimeout,
    Block,
    Dispatch,
    Environment,
    Job,
    JobIndex,
    Plan,
    Preempt,
    Queue,
    SchedulingState,
    TimeLimitTerminate,
    Unblock,
    UsageLedger,
    plan,
)

M5 = "ml.m5.large"
G6 = "ml.g6.xlarge"

_seq = itertools.count(1)


def env(
    name: str = "env", limit: int | None = 10, enabled: bool = True, **types: int
) -> Environment:
    """An environment with a NUM_INSTANCES limit, or per-type limits (``ml_m5_large=4``)."""
    limits: dict[str, int] = {k.replace("_", "."): v for k, v in types.items()}
    if limit is not None:
        limits["NUM_INSTANCES"] = limit
    return Environment(name, enabled, limits)


def job(
    job_id: str,
    queue: str = "q",
    *,
    at: int = 0,
    n: int = 1,
    demand: Mapping[str, int] | None = None,
    **fields: Any,
) -> Job:
    """A RUNNABLE job needing ``n`` ml.m5.large unless ``demand`` says otherwise."""
    return Job(
        job_id=job_id,
        queue=queue,
        created_at=at,
        seq=fields.pop("seq", next(_seq)),
        demand=dict(demand) if demand is not None else ({M5: n} if n else {}),
        **fields,
    )


def running(job_id: str, queue: str = "q", *, environment: str = "env", **fields: Any) -> Job:
    fields.setdefault("scheduled_at", fields.get("at", 0))
    return job(job_id, queue, status="RUNNING", environment=environment, **fields)


def state(environments: Iterable[Environment], queues: Iterable[Queue]) -> SchedulingState:
    return SchedulingState.of(environments, queues)


def kinds(result: Plan) -> list[tuple[str, str]]:
    """Each decision as (class name, job id)."""
    return [(type(d).__name__, d.job_id) for d in result]


def dispatched(result: Plan) -> list[str]:
    return [d.job_id for d in result if isinstance(d, Dispatch)]


class Cluster:
    """A minimal runtime: applies plans to the index and ledger the way the real one must."""

    def __init__(self, config: SchedulingState, jobs: Iterable[Job] = ()) -> None:
        self.state = config
        self.index = JobIndex(jobs)
        self.ledger = UsageLedger()
        for queue in config.queues.values():
            if queue.fairshare is not None:
                self.ledger.configure(queue.name, queue.fairshare.share_decay_seconds)
        self._stops: dict[str, str] = {}
        self.ended: list[str] = []

    def submit(self, new: Job) -> None:
        self.index.add(new)

    def plan(self, now: int) -> Plan:
        return plan(self.state, self.index, self.ledger, now)

    def tick(self, now: int) -> Plan:
        result = self.plan(now)
        self.apply(result, now)
        return result

    def apply(self, result: Plan, now: int) -> None:
        for decision in result:
            current = self.index[decision.job_id]
            if isinstance(decision, Dispatch):
                self._dispatch(current, decision.environment, now)
            elif isinstance(decision, Block):
                self.index.replace(
                    replace(current, blocked_reason=decision.code, blocked_since=now)
                )
            elif isinstance(decision, Unblock):
                self.index.replace(replace(current, blocked_reason=None, blocked_since=None))
            elif isinstance(decision, Preempt | AttemptTimeout):
                self._stops[current.job_id] = type(decision).__name__
                self.index.replace(replace(current, stopping=True))
            elif isinstance(decision, TimeLimitTerminate):
                self.index.remove(current.job_id, at=now)
                self.ended.append(current.job_id)

    def finish(self, job_id: str, now: int) -> None:
        """The job's training job ended: its capacity is released."""
        done = self.index.remove(job_id)
        self.ledger.stop(done.queue, done.lane, done.instances, now)
        self.ended.append(job_id)

    def complete_stops(self, now: int) -> None:
        """Every stop in flight completes: preempted jobs queue again, timed-out ones end."""
        for job_id, kind in sorted(self._stops.items()):
            stopped = self.index[job_id]
            if kind == "AttemptTimeout":
                self.finish(job_id, now)
                continue
            self.index.replace(
                replace(
                    stopped,
                    status="RUNNABLE",
                    environment=None,
                    stopping=False,
                    scheduled_at=None,
                    started_at=None,
                )
            )
            self.ledger.stop(stopped.queue, stopped.lane, stopped.instances, now)
        self._stops.clear()

    def held(self, environment: str = "env") -> Mapping[str, int]:
        return self.index.held_in_environment(environment)

    def _dispatch(self, current: Job, environment: str, now: int) -> None:
        # A capacity-failed job keeps its reason: time in SCHEDULED counts toward the limit.
        keep = current.capacity_failed
        self.index.replace(
            replace(
                current,
                status="SCHEDULED",
                environment=environment,
                scheduled_at=now,
                blocked_reason=current.blocked_reason if keep else None,
                blocked_since=current.blocked_since if keep else None,
            )
        )
        self.ledger.start(current.queue, current.lane, current.instances, now)
