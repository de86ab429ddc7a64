"""One planning pass: ``plan(state, index, ledger, now) -> Plan``.

The pass runs in named steps over the runtime's index, never over every stored job:

1. ``expire_attempts``: dispatched jobs past ``scheduled_at + attemptDurationSeconds`` are stopped.
2. Per enabled environment, its queues in descending priority (spec §7.1), each by its kind: FIFO
   head-of-line (§7.2), fair share (§7.3) or quota shares (§7.4). They share one view of the
   environment's capacity, so what a higher-priority queue takes is gone for the next one.

Queues whose environment is missing or disabled are left untouched: nothing is dispatched into it
and the reasons its heads show stay as they are until it is enabled again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from batchd.scheduling.capacity import EnvironmentCapacity
from batchd.scheduling.context import PassContext, fifo_pass
from batchd.scheduling.fairshare import fairshare_pass
from batchd.scheduling.heads import PassLog
from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.model import Queue, QueueKind, SchedulingState
from batchd.scheduling.plan import AttemptTimeout, Plan
from batchd.scheduling.quota_pass import quota_pass
from batchd.scheduling.reasons import ATTEMPT_TIMEOUT

__all__ = ["plan"]

_QueuePass = Callable[[PassContext, Queue, EnvironmentCapacity], None]

_PASSES: Mapping[QueueKind, _QueuePass] = {
    "FIFO": fifo_pass,
    "FAIRSHARE": fairshare_pass,
    "QUOTA": quota_pass,
}


def plan(state: SchedulingState, index: JobIndex, ledger: UsageLedger, now: int) -> Plan:
    """Decide what to dispatch, block, unblock, preempt and terminate at ``now`` (epoch ms)."""
    ctx = PassContext(PassLog(now), index, ledger)
    expire_attempts(ctx)
    for env_name, queues in sorted(queues_by_environment(state).items()):
        env = state.environments.get(env_name)
        if env is None or not env.enabled:
            continue
        cap = EnvironmentCapacity(
            env,
            index.held_in_environment(env_name),
            index.releasing_in_environment(env_name),
        )
        for queue in queues:
            _PASSES[queue.kind](ctx, queue, cap)
    return Plan(tuple(ctx.log.decisions))


def expire_attempts(ctx: PassContext) -> None:
    for job in ctx.index.expired_attempts(ctx.now):
        if not job.stopping:
            ctx.log.emit(AttemptTimeout(job.job_id, ATTEMPT_TIMEOUT))


def queues_by_environment(state: SchedulingState) -> dict[str, list[Queue]]:
    """Queues per environment, highest priority first (ties by name, for determinism)."""
    grouped: dict[str, list[Queue]] = {}
    for queue in state.queues.values():
        if queue.environment is not None:
            grouped.setdefault(queue.environment, []).append(queue)
    for queues in grouped.values():
        queues.sort(key=lambda q: (-q.priority, q.name))
    return grouped
