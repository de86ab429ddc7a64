"""Job control on the scheduling leader: terminate, update, stop a training job; and the
requests follower replicas forward, applied the same way. Callers hold the runtime's lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from batchd.domain.jobs import ServiceJob, StopKind
from batchd.errors import NotFound
from batchd.runtime import outcomes
from batchd.runtime.core import Core
from batchd.storage.mailbox import Mail, MailKind

__all__ = ["FORWARDABLE", "apply", "forwardable", "stop_training_job", "terminate", "update"]

# The job fields the API changes after submit; followers forward them to the leader.
FORWARDABLE = ("scheduling_priority", "tags")


async def terminate(core: Core, job_id: str, reason: str) -> None:
    job = await core.held_or_stored(job_id)
    if job is None or job.terminal:
        return  # TerminateServiceJob of a finished job is a no-op (spec §5.3)
    now = core.clock.now_ms()
    core.jobs.submitted.pop(job_id)
    if job.current is None:
        core.change(job, outcomes.terminated_queued(job, reason, now), now)
        await core.commit()
        return
    if job.current.stop_kind is StopKind.TERMINATE:
        return
    current = dataclasses.replace(job.current, stop_kind=StopKind.TERMINATE, stop_reason=reason)
    stopping = dataclasses.replace(job, current=current)
    core.change(job, stopping, now)
    core.stopping(stopping, now)
    await core.commit()
    await core.stop(stopping)


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
