"""The scheduling configuration, read from the stored resources into the planner's model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from batchd.domain.arns import Arns
from batchd.domain.resources import (
    BACKEND_TAG,
    JobQueue,
    QuotaShare,
    SchedulingPolicy,
    ServiceEnvironment,
)
from batchd.scheduling import model as sm
from batchd.storage.store import Store

__all__ = ["Configuration", "load_configuration"]


@dataclass(frozen=True)
class Configuration:
    """What the planner plans over, and which backend runs each service environment."""

    state: sm.SchedulingState = field(default_factory=lambda: sm.SchedulingState.of([], []))
    backends: Mapping[str, str] = field(default_factory=dict)


async def load_configuration(store: Store, arns: Arns, default_backend: str) -> Configuration:
    envs = [env for _, env in await store.resources.list(ServiceEnvironment)]
    policies = {p.arn: p for _, p in await store.resources.list(SchedulingPolicy)}
    shares: dict[str, list[sm.QuotaShare]] = {}
    for order, share in await store.resources.list(QuotaShare):
        queue = share.job_queue_arn.rsplit("/", 1)[-1]
        shares.setdefault(queue, []).append(_quota_share(share, order))
    queues = [
        _queue(arns, q, policies, shares.get(q.job_queue_name, []))
        for _, q in await store.resources.list(JobQueue)
    ]
    environments = (
        sm.Environment(
            e.service_environment_name,
            e.usable,
            {c.capacity_unit: c.max_capacity for c in e.capacity_limits},
        )
        for e in envs
    )
    return Configuration(
        state=sm.SchedulingState.of(environments, queues),
        backends={
            e.service_environment_name: e.tags.get(BACKEND_TAG, default_backend) for e in envs
        },
    )


def _queue(
    arns: Arns,
    queue: JobQueue,
    policies: Mapping[str, SchedulingPolicy],
    shares: list[sm.QuotaShare],
) -> sm.Queue:
    policy = policies.get(queue.scheduling_policy_arn or "")
    env_arn = queue.environment_arn
    fairshare = None
    kind: sm.QueueKind = "FIFO"
    if policy is not None and policy.kind == "QUOTA":
        kind = "QUOTA"
    elif policy is not None:
        kind = "FAIRSHARE"
        fp = policy.fairshare_policy
        fairshare = sm.FairsharePolicy(
            share_decay_seconds=(fp.share_decay_seconds or 0) if fp else 0,
            compute_reservation=(fp.compute_reservation or 0) if fp else 0,
            weights=tuple(
                (s.share_identifier, s.weight_factor if s.weight_factor is not None else 1.0)
                for s in (fp.share_distribution if fp else ())
            ),
        )
    return sm.Queue(
        name=queue.job_queue_name,
        priority=queue.priority,
        environment=arns.resource_of(env_arn, "service-environment") if env_arn else None,
        kind=kind,
        fairshare=fairshare,
        quota_shares=tuple(shares) if kind == "QUOTA" else (),
        time_limit_actions=tuple(
            sm.TimeLimitAction(a.reason, a.max_time_seconds)
            for a in queue.job_state_time_limit_actions
        ),
    )


def _quota_share(share: QuotaShare, order: int) -> sm.QuotaShare:
    sharing = share.resource_sharing_configuration
    return sm.QuotaShare(
        name=share.quota_share_name,
        enabled=share.state == "ENABLED",
        limits={c.capacity_unit: c.max_capacity for c in share.capacity_limits},
        strategy=sharing.strategy,  # type: ignore[arg-type]
        borrow_limit=sharing.borrow_limit if sharing.borrow_limit is not None else -1,
        in_share_preemption=share.preemption_configuration.in_share_preemption == "ENABLED",
        order=order,
    )
