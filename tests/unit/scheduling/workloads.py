"""Random configurations and workloads for property tests, and the invariants they must keep."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from batchd.scheduling import (
    NUM_INSTANCES,
    AttemptTimeout,
    BlockCode,
    Dispatch,
    Environment,
    FairsharePolicy,
    Job,
    Plan,
    Preempt,
    Queue,
    QueueKind,
    QuotaShare,
    SchedulingState,
    TimeLimitAction,
    TimeLimitTerminate,
)
from batchd.scheduling.capacity import EnvironmentCapacity, can_ever_fit, project
from batchd.scheduling.fairshare import active_share_count, reserved_fraction
from batchd.scheduling.quota import QuotaBook

from .builders import G6, M5, Cluster, job

SHARES = ("s0", "s1", "s2", "s3")
ACTIONS = (
    TimeLimitAction("MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE", 600),
    TimeLimitAction("MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED", 600),
    TimeLimitAction("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 900),
)


@dataclass(frozen=True)
class Arrival:
    queue: int
    share: int
    demand: tuple[tuple[str, int], ...]
    priority: int


@dataclass(frozen=True)
class Step:
    arrivals: tuple[Arrival, ...]
    elapsed_ms: int
    finish_fraction: float


def _fairshare() -> st.SearchStrategy[FairsharePolicy]:
    weights = st.lists(st.tuples(st.sampled_from(SHARES), st.sampled_from([0.25, 1.0, 3.0])))
    return st.builds(
        FairsharePolicy,
        st.sampled_from([0, 60, 600]),
        st.sampled_from([0, 0, 30, 50]),
        weights.map(lambda w: tuple(dict(w).items())),
    )


@st.composite
def pooled_states(draw: st.DrawFn) -> SchedulingState:
    """One or two NUM_INSTANCES environments shared by FIFO and fair-share queues."""
    envs = [
        Environment("e0", True, {NUM_INSTANCES: draw(st.integers(0, 12))}),
        Environment("e1", draw(st.booleans()), {NUM_INSTANCES: draw(st.integers(0, 12))}),
    ]
    queues = []
    for i in range(draw(st.integers(1, 3))):
        kind: QueueKind = draw(st.sampled_from(["FIFO", "FAIRSHARE"]))
        queues.append(
            Queue(
                f"q{i}",
                draw(st.integers(0, 3)),
                draw(st.sampled_from(["e0", "e0", "e1"])),
                kind,
                fairshare=draw(_fairshare()) if kind == "FAIRSHARE" else None,
                time_limit_actions=draw(st.sampled_from([(), ACTIONS])),
            )
        )
    return SchedulingState.of(envs, queues)


@st.composite
def quota_states(draw: st.DrawFn) -> SchedulingState:
    """A quota-managed environment of two instance types and its one queue."""
    limits = {M5: draw(st.integers(1, 10)), G6: draw(st.integers(0, 4))}
    shares = []
    for i in range(draw(st.integers(1, 4))):
        own = {M5: draw(st.integers(0, 6))}
        if draw(st.booleans()):
            own[G6] = draw(st.integers(0, 3))
        shares.append(
            QuotaShare(
                SHARES[i],
                draw(st.booleans()) or i == 0,
                own,
                draw(st.sampled_from(["RESERVE", "LEND", "LEND_AND_BORROW"])),
                draw(st.sampled_from([-1, 0, 50, 100, 200])),
                draw(st.booleans()),
                i,
            )
        )
    queue = Queue("q0", 1, "e0", "QUOTA", quota_shares=tuple(shares), time_limit_actions=ACTIONS)
    return SchedulingState.of([Environment("e0", True, limits)], [queue])


def steps(queue_count: int = 3) -> st.SearchStrategy[list[Step]]:
    demand = st.one_of(
        st.tuples(st.tuples(st.just(M5), st.integers(0, 4))),
        st.tuples(
            st.tuples(st.just(M5), st.integers(1, 3)), st.tuples(st.just(G6), st.integers(1, 2))
        ),
        st.tuples(st.tuples(st.just(M5), st.integers(5, 14))),
    )
    arrival = st.builds(
        Arrival, st.integers(0, queue_count - 1), st.integers(0, 3), demand, st.integers(0, 3)
    )
    step = st.builds(
        Step,
        st.lists(arrival, max_size=6).map(tuple),
        st.sampled_from([1_000, 30_000, 120_000, 700_000]),
        st.sampled_from([0.0, 0.3, 0.7]),
    )
    return st.lists(step, min_size=1, max_size=10)


def planner_inputs(cluster: Cluster) -> object:
    """Everything the planner reads, as plain comparable data."""
    index, queues = cluster.index, sorted(cluster.state.queues)
    environments = sorted(cluster.state.environments)
    lanes = {
        q: {name: [j.job_id for j in lane] for name, lane in index.lanes(q).items()} for q in queues
    }
    return (
        sorted((j.job_id, j) for j in index),
        lanes,
        {(q, name): set(index.blocked_in_lane(q, name)) for q in queues for name in lanes[q]},
        {q: (dict(index.held_by_queue(q)), index.last_left_at(q)) for q in queues},
        {q: {n: dict(h) for n, h in index.held_by_lanes(q).items()} for q in queues},
        {q: {n: dict(h) for n, h in index.releasing_by_lanes(q).items()} for q in queues},
        {
            e: (dict(index.held_in_environment(e)), dict(index.releasing_in_environment(e)))
            for e in environments
        },
        copy.deepcopy(vars(cluster.ledger)),
    )


class Simulation:
    """Drives a Cluster through plan/apply cycles, checking invariants on every plan."""

    def __init__(self, config: SchedulingState, rnd: random.Random) -> None:
        self.cluster = Cluster(config)
        self.rnd = rnd
        self.now = 0
        self.count = 0
        self.plans: list[Plan] = []

    def run(self, schedule: Sequence[Step]) -> None:
        for step in schedule:
            self.now += step.elapsed_ms
            for arrival in step.arrivals:
                self.arrive(arrival)
            self.cycle()
            self.progress(step.finish_fraction)

    def arrive(self, arrival: Arrival) -> None:
        queues = sorted(self.cluster.state.queues.values(), key=lambda q: q.name)
        queue = queues[arrival.queue % len(queues)]
        share = SHARES[arrival.share]
        self.count += 1
        self.cluster.submit(
            job(
                f"j{self.count}",
                queue.name,
                at=self.now,
                demand=dict(arrival.demand),
                priority=arrival.priority,
                attempt_timeout_seconds=self.rnd.choice([None, None, 60, 3_600]),
                share_identifier=share if queue.kind == "FAIRSHARE" else None,
                quota_share_name=share if queue.kind == "QUOTA" else None,
            )
        )

    def cycle(self) -> Plan:
        holdbacks = _holdbacks(self.cluster, self.now)
        # The runtime forgets long-idle usage before each pass; the pass itself changes nothing.
        self.cluster.ledger.prune(self.now)
        before = planner_inputs(self.cluster)
        result = self.cluster.plan(self.now)
        assert planner_inputs(self.cluster) == before, "plan() changed the state it reads"
        check_plan(self.cluster, result)
        check_reservation(self.cluster, result, holdbacks)
        self.cluster.apply(result, self.now)
        check_capacity(self.cluster)
        check_heads(self.cluster, holdbacks)
        self.plans.append(result)
        return result

    def progress(self, finish_fraction: float) -> None:
        """Scheduled jobs start (or hit a capacity error); some running ones finish; stops end."""
        index = self.cluster.index
        for state in list(self.cluster.state.environments):
            for current in sorted(index.dispatched_in_environment(state).values(), key=_by_id):
                if current.status == "SCHEDULED" and not current.stopping:
                    self._start(current)
                elif (
                    current.status == "RUNNING"
                    and self.rnd.random() < finish_fraction
                    and not current.stopping
                ):
                    self.cluster.finish(current.job_id, self.now)
        self.cluster.complete_stops(self.now)

    def _start(self, current: Job) -> None:
        if self.rnd.random() < 0.1:
            self.cluster.capacity_error(current.job_id, self.now)
        else:
            self.cluster.start(current.job_id, self.now)


def _by_id(current: Job) -> str:
    return current.job_id


def _holdbacks(cluster: Cluster, now: int) -> dict[str, float]:
    return {
        queue.name: reserved_fraction(
            queue.fairshare or FairsharePolicy(),
            active_share_count(cluster.index, cluster.ledger, queue.name, now),
        )
        for queue in cluster.state.queues.values()
        if queue.kind == "FAIRSHARE"
    }


def check_plan(cluster: Cluster, result: Plan) -> None:
    """Each job is settled at most once, dispatches take RUNNABLE jobs into enabled
    environments, and only jobs not already stopping are stopped."""
    settled = [d.job_id for d in result if isinstance(d, Dispatch | Preempt | AttemptTimeout)]
    settled += [d.job_id for d in result if isinstance(d, TimeLimitTerminate)]
    assert len(settled) == len(set(settled)), result
    for decision in result:
        target = cluster.index[decision.job_id]
        if isinstance(decision, Dispatch):
            queue = cluster.state.queues[target.queue]
            assert target.status == "RUNNABLE"
            assert decision.environment == queue.environment
            assert cluster.state.environments[decision.environment].enabled
        elif isinstance(decision, Preempt | AttemptTimeout):
            assert target.is_dispatched and not target.stopping
        elif isinstance(decision, TimeLimitTerminate):
            assert target.status == "RUNNABLE" and target.blocked_reason == decision.code


def check_reservation(cluster: Cluster, result: Plan, holdbacks: dict[str, float]) -> None:
    """A fair share already holding capacity never dips into what computeReservation keeps."""
    used = {name: dict(cluster.held(name)) for name in cluster.state.environments}
    holding = {
        (queue, lane)
        for queue in holdbacks
        for lane, held in cluster.index.held_by_lanes(queue).items()
        if held
    }
    for decision in result:
        if not isinstance(decision, Dispatch):
            continue
        target = cluster.index[decision.job_id]
        env = cluster.state.environments[decision.environment]
        for unit, count in target.demand.items():
            used[env.name][unit] = used[env.name].get(unit, 0) + count
        key = (target.queue, target.lane)
        if key in holding and target.instances:
            limit = env.limits[NUM_INSTANCES]
            reachable = limit - int(limit * holdbacks[target.queue])
            assert sum(used[env.name].values()) <= reachable, (decision, holdbacks)
        if target.instances and target.queue in holdbacks:
            holding.add(key)


def check_capacity(cluster: Cluster) -> None:
    for env in cluster.state.environments.values():
        held = project(env.limits, cluster.held(env.name))
        assert held is not None
        for unit, count in held.items():
            assert count <= env.limits[unit], (env, dict(cluster.held(env.name)))
    for queue in cluster.state.queues.values():
        if queue.kind == "QUOTA":
            _check_ceilings(cluster, queue)


def _check_ceilings(cluster: Cluster, queue: Queue) -> None:
    held = cluster.index.held_by_lanes(queue.name)
    for share in queue.quota_shares:
        for unit, count in held.get(share.name, {}).items():
            own = share.limits.get(unit, 0)
            if share.strategy != "LEND_AND_BORROW":
                assert count <= own, (share, dict(held[share.name]))
            elif share.borrow_limit >= 0:
                assert count * 100 <= own * (100 + share.borrow_limit), share


def check_heads(cluster: Cluster, holdbacks: dict[str, float]) -> None:
    """Every RUNNABLE head left behind shows a reason or waits for capacity others hold."""
    for queue in cluster.state.queues.values():
        env = cluster.state.environments.get(queue.environment or "")
        if env is None or not env.enabled:
            continue
        cap = EnvironmentCapacity(env, cluster.held(env.name), {})
        if queue.kind == "QUOTA":
            _check_quota_heads(cluster, queue, env, cap)
            continue
        holding = cluster.index.held_by_lanes(queue.name)
        for name, lane in cluster.index.lanes(queue.name).items():
            head = lane.first()
            assert head is not None
            _check_only_head_blocked(cluster, queue, name)
            if can_ever_fit(env, head.demand):
                assert head.blocked_reason != BlockCode.ENVIRONMENT_MAX_RESOURCE
            else:
                assert head.blocked_reason == BlockCode.ENVIRONMENT_MAX_RESOURCE
            if head.capacity_failed and can_ever_fit(env, head.demand):
                assert head.blocked_reason == BlockCode.INSUFFICIENT_CAPACITY
            if head.blocked_reason is not None:
                _check_reason(env, head.demand, head.blocked_reason, head.capacity_failed)
                continue
            holdback = holdbacks.get(queue.name, 0.0) if holding.get(name) else 0.0
            assert not cap.fits(head.demand, holdback), (queue.name, head)


def _check_only_head_blocked(cluster: Cluster, queue: Queue, lane: str) -> None:
    behind = list(cluster.index.lanes(queue.name)[lane])[1:]
    assert all(j.blocked_reason is None for j in behind), behind


def _check_reason(
    env: Environment, demand: Mapping[str, int], reason: str, capacity_failed: bool
) -> None:
    if reason == BlockCode.ENVIRONMENT_MAX_RESOURCE:
        assert not can_ever_fit(env, demand)
    elif reason == BlockCode.INSUFFICIENT_CAPACITY:
        assert capacity_failed


def _check_quota_heads(
    cluster: Cluster, queue: Queue, env: Environment, cap: EnvironmentCapacity
) -> None:
    book = QuotaBook(
        queue.quota_shares,
        env,
        cluster.index.held_by_lanes(queue.name),
        cluster.index.releasing_by_lanes(queue.name),
    )
    heads = {}
    for share in queue.quota_shares:
        lane = cluster.index.lanes(queue.name).get(share.name)
        if share.enabled and lane is not None and (head := lane.first()) is not None:
            heads[share.name] = head
    claimants = [
        name
        for name, head in heads.items()
        if head.blocked_reason in (None, BlockCode.INSUFFICIENT_CAPACITY)
        and book.fits_own(name, head.demand)
        and not cap.fits(head.demand)
    ]
    for name, head in heads.items():
        _check_only_head_blocked(cluster, queue, name)
        expected = (
            BlockCode.ENVIRONMENT_MAX_RESOURCE
            if not can_ever_fit(env, head.demand)
            else (static.code if (static := book.static_reason(name, head.demand)) else None)
        )
        if expected is None and head.capacity_failed:
            expected = BlockCode.INSUFFICIENT_CAPACITY
        assert head.blocked_reason == expected, (head, expected)
        if head.blocked_reason is not None:
            _check_reason(env, head.demand, head.blocked_reason, head.capacity_failed)
            continue
        servable = book.fits_own(name, head.demand) or book.can_borrow(name, head.demand)
        if servable and cap.fits(head.demand):
            assert set(claimants) - {name}, (name, head, claimants)
