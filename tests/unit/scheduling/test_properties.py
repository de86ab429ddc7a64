"""Invariants over random workloads driven through plan/apply cycles."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from batchd.scheduling import (
    NUM_INSTANCES,
    Dispatch,
    Environment,
    FairsharePolicy,
    Preempt,
    PreemptionKind,
    Queue,
    QuotaShare,
    SchedulingState,
    SharingStrategy,
)
from batchd.scheduling.capacity import EnvironmentCapacity

from .builders import M5, Cluster, job
from .workloads import Simulation, Step, pooled_states, quota_states, steps


@settings(max_examples=400, deadline=None)
@given(pooled_states(), steps(), st.randoms(use_true_random=False))
def test_fifo_and_fair_share_cycles_keep_capacity_heads_and_dispatches_consistent(
    config: SchedulingState, schedule: list[Step], rnd: random.Random
) -> None:
    Simulation(config, rnd).run(schedule)


@settings(max_examples=400, deadline=None)
@given(quota_states(), steps(queue_count=1), st.randoms(use_true_random=False))
def test_quota_cycles_never_exceed_own_limit_plus_borrow_limit(
    config: SchedulingState, schedule: list[Step], rnd: random.Random
) -> None:
    Simulation(config, rnd).run(schedule)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10),
    st.lists(st.tuples(st.sampled_from(["hi", "lo"]), st.integers(0, 6)), max_size=12),
)
def test_higher_queue_priority_is_served_first_when_both_fit(
    limit: int, arrivals: list[tuple[str, int]]
) -> None:
    # Given two FIFO queues on one environment
    config = SchedulingState.of(
        [Environment("env", True, {NUM_INSTANCES: limit})],
        [Queue("hi", 5, "env"), Queue("lo", 1, "env")],
    )
    jobs = [job(f"{q}{i}", q, at=i, n=n) for i, (q, n) in enumerate(arrivals)]
    cluster = Cluster(config, jobs)
    result = cluster.tick(now=1)
    # Then the high queue's remaining head could not have used what the low queue took
    taken_by_low = {M5: 0}
    for decision in result:
        if isinstance(decision, Dispatch) and decision.job_id.startswith("lo"):
            taken_by_low[M5] += cluster.index[decision.job_id].instances
    head = cluster.index.lanes("hi").get("")
    if head is not None and (first := head.first()) is not None and taken_by_low[M5]:
        before_low = dict(cluster.held("env"))
        before_low[M5] -= taken_by_low[M5]
        cap = EnvironmentCapacity(config.environments["env"], before_low, {})
        assert not cap.fits(first.demand)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 8),
    st.sampled_from(["LEND", "LEND_AND_BORROW"]),
    st.integers(1, 8),
    st.randoms(use_true_random=False),
)
def test_lender_job_arriving_reclaims_borrowed_capacity_and_then_runs(
    own: int, strategy: SharingStrategy, need: int, rnd: random.Random
) -> None:
    # Given a borrower that filled the environment, mostly with the lender's idle capacity
    shares = (
        QuotaShare("lender", True, {M5: own}, strategy, order=1),
        QuotaShare("borrower", True, {M5: 1}, "LEND_AND_BORROW", order=2),
    )
    config = SchedulingState.of(
        [Environment("env", True, {M5: own + 1})],
        [Queue("q", 1, "env", "QUOTA", quota_shares=shares)],
    )
    cluster = Cluster(config)
    for i in range(own + 3):
        cluster.submit(job(f"b{i}", at=i, n=1, quota_share_name="borrower"))
    cluster.tick(now=10)
    assert cluster.held("env") == {M5: own + 1}
    # When the lender's job arrives
    need = min(need, own)
    cluster.submit(
        job("mine", at=100, n=need, quota_share_name="lender", priority=rnd.randint(0, 3))
    )
    reclaim = cluster.tick(now=200)
    # Then exactly enough borrowed jobs are preempted across shares, never the lender's own
    assert {p.kind for p in reclaim.preemptions} == {PreemptionKind.CROSS_SHARE}
    assert len(reclaim.preemptions) == need
    assert all(cluster.index[p.job_id].lane == "borrower" for p in reclaim.preemptions)
    # And once the stops complete the lender's job is dispatched first
    cluster.complete_stops(now=300)
    assert [d.job_id for d in cluster.tick(now=400).dispatches] == ["mine"]


def test_fair_share_converges_to_the_configured_weights_over_a_long_run() -> None:
    # Given two always-backlogged shares with weights 1 and 3 on 20 instances
    policy = FairsharePolicy(600, 0, (("light", 1.0), ("heavy", 3.0)))
    config = SchedulingState.of(
        [Environment("env", True, {NUM_INSTANCES: 20})],
        [Queue("q", 1, "env", "FAIRSHARE", fairshare=policy)],
    )
    cluster = Cluster(config)
    rnd = random.Random(7)
    time_held = {"light": 0, "heavy": 0}
    count = 0
    for second in range(0, 6 * 3600, 10):
        now = second * 1000
        for share in time_held:
            while len(cluster.index.lanes("q").get(share) or ()) < 5:
                count += 1
                cluster.submit(job(f"{share}{count}", at=now, share_identifier=share))
        cluster.tick(now)
        for current in list(cluster.index.dispatched_in_queue("q").values()):
            time_held[current.lane] += 10
            if rnd.random() < 10 / 300:  # jobs last five minutes on average
                cluster.finish(current.job_id, now)
    # Then capacity-time splits 3:1 in favour of the lighter weight
    assert 2.7 < time_held["light"] / time_held["heavy"] < 3.3


def test_preempted_jobs_are_never_chosen_twice_while_stopping() -> None:
    shares = (
        QuotaShare("a", True, {M5: 4}, "LEND", order=1),
        QuotaShare("b", True, {M5: 0}, "LEND_AND_BORROW", order=2),
    )
    config = SchedulingState.of(
        [Environment("env", True, {M5: 4})], [Queue("q", 1, "env", "QUOTA", quota_shares=shares)]
    )
    cluster = Cluster(config, [job(f"b{i}", at=i, quota_share_name="b") for i in range(4)])
    cluster.tick(now=1)
    cluster.submit(job("a1", at=2, n=4, quota_share_name="a"))
    chosen: list[str] = []
    for now in range(10, 60, 10):
        chosen += [d.job_id for d in cluster.tick(now) if isinstance(d, Preempt)]
    assert sorted(chosen) == ["b0", "b1", "b2", "b3"]
