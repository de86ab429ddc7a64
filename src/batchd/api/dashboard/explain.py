"""Why a job is waiting, in words, from what the planner already recorded.

Pure: the caller gathers the facts (the job's status and statusReason, where the queue's
snapshot puts it, the state of its queue and environment) and this turns them into one
sentence. RUNNABLE jobs the planner could not place carry a statusReason code; jobs behind a
blocked head carry none, so their blocker is read from the head of the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchd.scheduling.reasons import (
    PREEMPTION_PREFIX,
    QUOTA_BORROW_LIMIT,
    QUOTA_BORROWABLE_CAPACITY,
    QUOTA_SHARE_LIMIT,
    BlockCode,
)

__all__ = ["Blocker", "WaitFacts", "explain_wait"]


@dataclass(frozen=True)
class WaitFacts:
    status: str
    status_reason: str | None = None
    queue_kind: str = "FIFO"  # FIFO | FAIRSHARE | QUOTA
    queue_enabled: bool = True
    environment: str | None = None  # name of the queue's first service environment
    environment_usable: bool = True
    position: int | None = None  # 0-based, in the queue's front (None: not in it)
    front_size: int = 0  # how many jobs the front lists (it is capped)
    head_job: str | None = None  # the job at position 0, when it is not this one
    head_reason: str | None = None  # that job's statusReason
    share: str | None = None  # shareIdentifier or quota share name
    demand: str = ""  # what the job asks for, e.g. "2 x ml.m5.large"
    used: str = ""  # the environment's use against its limits: "3 of 4 NUM_INSTANCES in use"
    # Whether the job, and the head of its queue, fit in the environment's free capacity now
    # (None: unknown). A head that does not fit is held without a statusReason, as in AWS.
    fits: bool | None = None
    head_fits: bool | None = None
    head_demand: str = ""


@dataclass(frozen=True)
class Blocker:
    kind: str  # a stable key: admission, queue-disabled, capacity, ... (tests and CSS use it)
    words: str


def _code(reason: str | None) -> str | None:
    if not reason:
        return None
    code = reason.split(" - ", 1)[0]
    return code if code.startswith(("CAPACITY:", "MISCONFIGURATION:")) else None


def _coded(facts: WaitFacts, code: str, reason: str, whose: str) -> Blocker:
    env = facts.environment or "its service environment"
    share = f"quota share {facts.share}" if facts.share else "its quota share"
    if code == BlockCode.INSUFFICIENT_CAPACITY:
        used = f" ({facts.used})" if facts.used else ""
        needs = f"; {whose} needs {facts.demand}" if facts.demand else ""
        return Blocker(
            "capacity",
            f"No capacity: {env} could not provide the instances{used}{needs}. The scheduler "
            "retries at every cycle.",
        )
    if code == BlockCode.ENVIRONMENT_MAX_RESOURCE:
        return Blocker(
            "environment-limit",
            f"Never fits: {whose} asks for more ({facts.demand or 'capacity'}) than {env}'s "
            "capacity limits allow, even when idle. Raise the limits or resubmit smaller.",
        )
    message = reason.split(" - ", 1)[-1]
    if message == QUOTA_BORROW_LIMIT.message:
        return Blocker(
            "borrow-limit",
            f"Borrow limit: {share} has used its own limit and may not borrow more.",
        )
    if message == QUOTA_BORROWABLE_CAPACITY.message:
        return Blocker(
            "borrowable-capacity",
            f"Nothing to borrow: {share} needs more than the other shares can lend.",
        )
    if message == QUOTA_SHARE_LIMIT.message:
        return Blocker(
            "share-limit",
            f"Share limit: {share} is at its capacity limit; {whose} waits for the share's "
            "running jobs to finish.",
        )
    return Blocker("misconfiguration", f"Blocked: {reason}")


def explain_wait(facts: WaitFacts) -> Blocker | None:
    """The blocker of a waiting job; None for a job that is not waiting."""
    if facts.status in ("SUCCEEDED", "FAILED"):
        return None
    if facts.status in ("SCHEDULED", "STARTING", "RUNNING"):
        if facts.status_reason and facts.status_reason.startswith(PREEMPTION_PREFIX):
            return Blocker("preempting", f"Being preempted: {facts.status_reason}")
        return None
    if facts.status in ("SUBMITTED", "PENDING"):
        return Blocker(
            "admission", "Awaiting admission: the scheduler admits it at its next cycle."
        )
    if not facts.queue_enabled:
        return Blocker("queue-disabled", "The job queue is DISABLED: it dispatches nothing.")
    if facts.environment is None:
        return Blocker("no-environment", "The job queue has no service environment.")
    if not facts.environment_usable:
        return Blocker(
            "environment-disabled",
            f"Service environment {facts.environment} is disabled or invalid: nothing "
            "dispatches to it.",
        )
    code = _code(facts.status_reason)
    if code is not None:
        return _coded(facts, code, facts.status_reason or "", "the job")
    return _by_position(facts)


def _full(facts: WaitFacts, whose: str, demand: str) -> str:
    env = facts.environment or "its service environment"
    used = f" ({facts.used})" if facts.used else ""
    needs = f"; {whose} needs {demand}" if demand else ""
    return (
        f"No capacity: {env} has too little free{used}{needs} and starts when running jobs finish."
    )


def _by_position(facts: WaitFacts) -> Blocker:
    if facts.position == 0:
        if facts.fits is False:
            return Blocker("capacity", _full(facts, "the job", facts.demand))
        return Blocker(
            "next", "Next to dispatch: it is at the head of the queue and starts when it fits."
        )
    if facts.position is None:
        where = f"more than {facts.front_size} jobs are ahead of it"
        return Blocker("behind", f"Waiting its turn: {where}.")
    ahead = f"{facts.position} job{'s' if facts.position != 1 else ''} ahead"
    head_code = _code(facts.head_reason)
    if facts.head_job and (head_code is not None or facts.head_fits is False):
        if head_code is not None:
            why = _coded(facts, head_code, facts.head_reason or "", "the head").words
        else:
            why = _full(facts, "the head", facts.head_demand)
        where = "a FIFO queue" if facts.queue_kind == "FIFO" else "the queue"
        return Blocker(
            "behind-blocked-head",
            f"Waiting behind {facts.head_job} at the head of {where} ({ahead}). {why}",
        )
    if facts.queue_kind == "FAIRSHARE":
        return Blocker(
            "fair-share",
            f"Waiting its turn: {ahead} in fair-share order; shares that used less recently "
            "go first.",
        )
    return Blocker("behind", f"Waiting its turn: {ahead} in dispatch order.")
