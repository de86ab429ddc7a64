"""The pure scheduling core: which service jobs to dispatch, block, preempt or terminate, and why.

No I/O and no clock: ``now`` is always a parameter, in epoch milliseconds. The runtime owns two
mutable, incrementally maintained structures and a snapshot of configuration, asks for a plan,
and applies it.

Inputs (frozen records, ``model``)
    ``Environment(name, enabled, limits)``, ``Queue(name, priority, environment, kind,
    fairshare, quota_shares, time_limit_actions)``, ``FairsharePolicy``, ``QuotaShare``,
    ``TimeLimitAction``, ``Job`` and ``SchedulingState.of(environments, queues)``.

``JobIndex`` (owned by the runtime)
    ``add(job)``, ``remove(job_id, at=None) -> Job``, ``replace(job)``, ``get(job_id)``,
    ``index[job_id]``. Holds only RUNNABLE, SCHEDULED, STARTING and RUNNING jobs: remove a job when
    it ends, ``replace`` it on any change (status, priority, blocking, ``stopping``). RUNNABLE jobs
    wait in lanes per queue and ``Job.lane`` (quota share, else share identifier, else one FIFO
    lane): ``lanes(queue)`` gives them in dispatch order, head in O(1). Dispatched jobs are
    grouped per environment, queue and lane with the instances they hold
    (``dispatched_in_environment``, ``held_by_lanes``...). Every update is O(log n).

``UsageLedger`` (owned by the runtime)
    ``configure(queue, share_decay_seconds)`` when a fair-share policy is loaded;
    ``start(queue, share, instances, at_ms)`` when a fair-share job is dispatched and
    ``stop(queue, share, instances, at_ms)`` when it releases capacity. Read in O(1) per share.

``plan(state, index, ledger, now) -> Plan``
    An immutable sequence of decisions; apply them in order:

    * ``Dispatch(job_id, environment)``: RUNNABLE -> SCHEDULED. The job keeps ``blocked_since``
      if it is ``capacity_failed`` (capacity time accumulates, spec §5.4).
    * ``Block(job_id, code, reason)``: set statusReason to ``reason``, ``blocked_reason=code``,
      ``blocked_since=now``. Emitted only when the code changes.
    * ``Unblock(job_id)``: clear statusReason, ``blocked_reason`` and ``blocked_since``.
    * ``Preempt(job_id, kind, reason)``: set statusReason to ``reason`` and ``stopping=True``;
      stop the training job; the attempt record uses ``attempt_reason``.
    * ``TimeLimitTerminate(job_id, code, reason)``: RUNNABLE -> FAILED, isTerminated.
    * ``AttemptTimeout(job_id, reason)``: ``stopping=True``; stop it; then FAILED, no retry.

    A pass costs the decisions it makes plus the lanes and dispatched jobs it looks at, never
    the number of queued jobs. The emulator-specific rules (spec §12 #23) are documented where
    they live: ``fairshare`` (score), ``quota_pass`` (steps), ``preemption`` (victims), ``heads``
    (which reasons a lane shows) and ``queue_view`` (``earliestTimeAtPosition``).

Snapshot views (``queue_view``)
    ``front_of_queue(state, index, ledger, queue, now, *, limit=100) -> list[QueuePosition]``,
    ``front_of_quota_shares(state, index, queue) -> dict[str, list[QueuePosition]]`` and
    ``utilization(state, index, queue) -> QueueUtilization``.
"""

from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger
from batchd.scheduling.model import (
    NUM_INSTANCES,
    Environment,
    FairsharePolicy,
    Job,
    JobStatus,
    Queue,
    QueueKind,
    QuotaShare,
    SchedulingState,
    SharingStrategy,
    TimeLimitAction,
)
from batchd.scheduling.plan import (
    AttemptTimeout,
    Block,
    Decision,
    Dispatch,
    Plan,
    Preempt,
    PreemptionKind,
    TimeLimitTerminate,
    Unblock,
)
from batchd.scheduling.planner import plan
from batchd.scheduling.queue_view import (
    CapacityUsage,
    FairshareUtilization,
    QueuePosition,
    QueueSnapshot,
    QueueUtilization,
    ShareUtilization,
    front_of_queue,
    front_of_quota_shares,
    snapshot,
    utilization,
)
from batchd.scheduling.reasons import BlockCode

__all__ = [
    "NUM_INSTANCES",
    "AttemptTimeout",
    "Block",
    "BlockCode",
    "CapacityUsage",
    "Decision",
    "Dispatch",
    "Environment",
    "FairsharePolicy",
    "FairshareUtilization",
    "Job",
    "JobIndex",
    "JobStatus",
    "Plan",
    "Preempt",
    "PreemptionKind",
    "Queue",
    "QueueKind",
    "QueuePosition",
    "QueueSnapshot",
    "QueueUtilization",
    "QuotaShare",
    "SchedulingState",
    "ShareUtilization",
    "SharingStrategy",
    "TimeLimitAction",
    "TimeLimitTerminate",
    "Unblock",
    "UsageLedger",
    "front_of_queue",
    "front_of_quota_shares",
    "plan",
    "snapshot",
    "utilization",
]
