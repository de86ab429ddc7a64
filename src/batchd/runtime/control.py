"""Job control on the scheduling leader: terminate, update, stop a training job; and the
requests follower replicas forward, applied the same way. Callers hold the runtime's lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from batchd.domain.jobs import ServiceJob, StopKind
from batchd.errors import NotFound
from batchd.runtime import outcomes
from batchd.runtime.core import Core
from batchd.storage.mailbox import Mail, MailKind

__all__ = [
    "FORWARDABLE",
    "apply",
    "forwardable",
    "stop_training_job",
    "terminate",
    "terminate_many",
    "update",
]

# The job fields the API changes after submit; followers forward them to the leader.
FORWARDABLE = ("scheduling_priority", "tags")


async def terminate(core: Core, job_id: str, reason: str) -> None:
    await terminate_many(core, [job_id], reason)


async def terminate_many(core: Core, job_ids: Sequence[str], reason: str) -> None:
    """End queued jobs at once and ask the backends to stop running ones: every job's new
    state in one commit, then the stops (a stop is idempotent if it is lost and redone)."""
    missing = core.jobs.missing(job_ids)
    if missing:
        core.jobs.hold(await core.store.job_reads.get_many(missing))
    now = core.clock.now_ms()
    to_stop = [
        job for job_id in job_ids if (job := _terminating(core, job_id, reason, now)) is not None
    ]
    await core.commit()
    for job in to_stop:
        await core.stop(job)


def _terminating(core: Core, job_id: str, reason: str, now: int) -> ServiceJob | None:
    """Record the job's termination; the job whose training job must be stopped, if any."""
    job = core.jobs.get(job_id)
    if job is None or job.terminal:
        return None  # TerminateServiceJob of a finished job is a no-op (spec §5.3)
    core.jobs.submitted.pop(job_id)
    if job.current is None:
        core.change(job, outcomes.terminated_queued(job, reason, now), now)
        return None
    if job.current.stop_kind is StopKind.TERMINATE:
        return None
    current = dataclasses.replace(job.current, stop_kind=StopKind.TERMINATE, stop_reason=reason)
    stopping = dataclasses.replace(job, current=current)
    core.change(job, stopping, now)
    core.stopping(stopping, now)
    return stopping


async def stop_training_job(core: Core, name: str) -> None:
    """SageMaker's StopTrainingJob: the attempt ends Stopped and retries as configured."""
    job = core.jobs.job_of_training_job(name)
    if job is None or job.current is None:
        return
    core.stopping(job, core.clock.now_ms())
    await core.commit()
    await core.stop(job)


async def update(core: Core, job_id: str, change: Callable[[ServiceJob], ServiceJob]) -> ServiceJob:
    job = await core.held_or_stored(job_id)
    if job is None:
        raise NotFound(f"Service job {job_id} not found")
    new = change(job)
    if job_id in core.jobs.submitted:
        core.jobs.submitted.put(new)
    core.change(job, new, core.clock.now_ms())
    await core.commit()
    return new


def forwardable(old: ServiceJob, new: ServiceJob) -> dict[str, Any]:
    """The fields an update changed, as a follower forwards them."""
    return {
        name: getattr(new, name) for name in FORWARDABLE if getattr(new, name) != getattr(old, name)
    }


async def apply_all(core: Core, mail: Sequence[Mail]) -> None:
    """Follower requests, oldest first. Each is removed in the transaction that commits its
    effect (or, with no effect, one of its own): a leader that dies before then leaves it to
    the next, and applying a request twice has the effect of applying it once. A run of
    terminates with one reason (a deleted queue's jobs) is applied in one commit."""
    at = 0
    while at < len(mail):
        first = mail[at]
        run = [first]
        if first.kind is MailKind.TERMINATE:
            reason = first.body.get("reason")
            while at + len(run) < len(mail):
                nxt = mail[at + len(run)]
                if nxt.kind is not MailKind.TERMINATE or nxt.body.get("reason") != reason:
                    break
                run.append(nxt)
        for item in run:
            core.jobs.done_with(item.id)
        if len(run) > 1:
            ids = [m.job_id for m in run if m.job_id]
            await terminate_many(core, ids, str(reason or ""))
        else:
            await apply(core, first)
        await core.commit()
        at += len(run)


async def apply(core: Core, mail: Mail) -> None:
    """What a follower replica asked for, as if it had been asked here."""
    job_id, body = mail.job_id, mail.body
    match mail.kind:
        case MailKind.RELOAD:
            await core.reload()
        case MailKind.TERMINATE if job_id:
            await terminate(core, job_id, str(body.get("reason", "")))
        case MailKind.STOP:
            await stop_training_job(core, str(body.get("name", "")))
        case MailKind.UPDATE if job_id:
            fields = {k: v for k, v in body.items() if k in FORWARDABLE}
            await update(core, job_id, lambda job: dataclasses.replace(job, **fields))
