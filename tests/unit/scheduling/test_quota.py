"""Quota management: own limits, lending, borrowing, reclaim and preemption (spec §5.5, §7.4)."""

from __future__ import annotations

import pytest

from batchd.scheduling import (
    Block,
    BlockCode,
    Preempt,
    PreemptionKind,
    Queue,
    QuotaShare,
    SharingStrategy,
    TimeLimitAction,
)

from .builders import G6, M5, Cluster, dispatched, env, job, kinds, running, state

SHARE_LIMIT = (
    "MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED - "
    "Job requirements exceed quota share capacity limits."
)
BORROW_LIMIT = (
    "MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED - "
    "Job requirements exceed quota share capacity limits and borrow limits."
)
BORROWABLE = (
    "MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED - "
    "Job requires borrowing that exceeds all configured borrowable capacity."
)
MAX_RESOURCE = (
    "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service environment(s) associated with"
    " the job queue cannot meet the capacity requirement of the job."
)
CROSS_SHARE = (
    "PREEMPTION_IN_PROGRESS: Cross-share preemption triggered to reclaim borrowed capacity"
)


def share(
    name: str,
    limit: int,
    strategy: SharingStrategy = "LEND_AND_BORROW",
    *,
    borrow: int = -1,
    in_share: bool = False,
    enabled: bool = True,
) -> QuotaShare:
    order = ord(name[0])
    limits = {M5: limit} if limit else {}
    return QuotaShare(name, enabled, limits, strategy, borrow, in_share, order)


def qm(env_limit: int, *shares: QuotaShare, actions: tuple[TimeLimitAction, ...] = ()) -> Cluster:
    queue = Queue("q", 1, "env", "QUOTA", quota_shares=shares, time_limit_actions=actions)
    return Cluster(state([env(limit=None, ml_m5_large=env_limit)], [queue]))


def submit(cluster: Cluster, share_name: str, count: int, *, at: int = 0, n: int = 1) -> None:
    for i in range(count):
        cluster.submit(job(f"{share_name}{at + i}", at=at + i, n=n, quota_share_name=share_name))


def hold(cluster: Cluster, share_name: str, count: int) -> None:
    for i in range(count):
        cluster.submit(running(f"{share_name}-run{i}", quota_share_name=share_name))


@pytest.mark.parametrize(
    ("shares", "demand", "expected"),
    [
        ((share("a", 4, "RESERVE"),), {M5: 5}, SHARE_LIMIT),
        ((share("a", 4, "LEND"),), {M5: 5}, SHARE_LIMIT),
        ((share("a", 0, "RESERVE"),), {M5: 1}, SHARE_LIMIT),
        ((share("a", 4, borrow=100), share("b", 8)), {M5: 9}, BORROW_LIMIT),
        ((share("a", 0, borrow=100), share("b", 8)), {M5: 1}, BORROW_LIMIT),
        ((share("a", 4), share("b", 14, "RESERVE")), {M5: 7}, BORROWABLE),
        ((share("a", 4), share("b", 14, "RESERVE")), {M5: 20}, BORROWABLE),
        ((share("a", 4), share("b", 14, "RESERVE")), {M5: 21}, MAX_RESOURCE),
        ((share("a", 4),), {G6: 1}, MAX_RESOURCE),
    ],
)
def test_head_that_can_never_fit_its_share_shows_the_quota_reason(
    shares: tuple[QuotaShare, ...], demand: dict[str, int], expected: str
) -> None:
    cluster = qm(20, *shares)
    cluster.submit(job("big", demand=demand, quota_share_name="a"))
    [decision] = list(cluster.plan(now=10))
    assert isinstance(decision, Block)
    assert decision.reason == expected


@pytest.mark.parametrize(
    ("borrow", "need", "blocked"),
    [(200, 8, False), (200, 9, False), (-1, 8, False), (200, 13, True), (100, 9, True)],
)
def test_borrowing_ceiling_follows_the_documented_example(
    borrow: int, need: int, blocked: bool
) -> None:
    # Two LEND_AND_BORROW shares of 4 in an environment of 8 (+ unassigned when larger)
    cluster = qm(12, share("a", 4, borrow=borrow), share("b", 4, borrow=borrow))
    cluster.submit(job("big", n=need, quota_share_name="a"))
    assert any(isinstance(d, Block) for d in cluster.plan(now=10)) is blocked


def test_shares_are_served_round_robin_within_their_own_limits() -> None:
    cluster = qm(4, share("a", 2, "RESERVE"), share("b", 2, "RESERVE"))
    submit(cluster, "a", 3, at=0)
    submit(cluster, "b", 3, at=10)
    assert dispatched(cluster.plan(now=100)) == ["a0", "b10", "a1", "b11"]


@pytest.mark.parametrize(
    ("lender", "borrower", "expected"),
    [
        (share("a", 4, "RESERVE"), share("b", 2), 2),
        (share("a", 4, "LEND"), share("b", 2), 6),
        (share("a", 4, "LEND_AND_BORROW"), share("b", 2), 6),
        (share("a", 4, "LEND"), share("b", 2, borrow=50), 3),
        (share("a", 4, "LEND"), share("b", 2, borrow=100), 4),
        (share("a", 4, "LEND"), share("b", 2, "LEND"), 2),
        (share("a", 4, "LEND"), share("b", 2, enabled=False), 0),
    ],
)
def test_idle_capacity_is_lent_only_by_lenders_and_borrowed_only_within_the_borrow_limit(
    lender: QuotaShare, borrower: QuotaShare, expected: int
) -> None:
    cluster = qm(6, lender, borrower)
    submit(cluster, "b", 10)
    assert len(dispatched(cluster.plan(now=100))) == expected


@pytest.mark.parametrize(("strategy", "expected"), [("LEND_AND_BORROW", 6), ("RESERVE", 2)])
def test_environment_capacity_no_share_covers_is_lendable(
    strategy: SharingStrategy, expected: int
) -> None:
    cluster = qm(6, share("a", 2, strategy))
    submit(cluster, "a", 10)
    assert len(dispatched(cluster.plan(now=100))) == expected


def test_idle_capacity_is_assigned_to_borrowers_oldest_head_first() -> None:
    cluster = qm(4, share("a", 2, "LEND"), share("b", 1), share("c", 1))
    submit(cluster, "b", 3, at=1)
    submit(cluster, "c", 2, at=10)
    assert dispatched(cluster.plan(now=100)) == ["b1", "c10", "b2", "b3"]


def test_lender_job_arriving_reclaims_borrowed_capacity_by_preemption() -> None:
    # Given b borrows all of a's idle capacity
    cluster = qm(4, share("a", 4, "LEND"), share("b", 0))
    for i, (priority, started) in enumerate([(5, 10), (1, 30), (1, 20), (5, 40)]):
        cluster.submit(
            running(f"b{i}", quota_share_name="b", priority=priority, started_at=started)
        )
    # When a's job needing 2 arrives
    cluster.submit(job("a1", n=2, quota_share_name="a"))
    result = cluster.tick(now=100)
    # Then the lowest priority, shortest running borrowers are preempted, and a1 waits
    assert list(result) == [
        Preempt("b1", PreemptionKind.CROSS_SHARE, CROSS_SHARE),
        Preempt("b2", PreemptionKind.CROSS_SHARE, CROSS_SHARE),
    ]
    assert result.preemptions[0].attempt_reason == (
        "Cross-share preemption triggered to reclaim borrowed capacity"
    )
    # And no more victims are chosen while those stops are in flight
    assert list(cluster.tick(now=200)) == []
    # And once they stopped, the lender's job runs before the preempted borrowers
    cluster.complete_stops(now=300)
    assert dispatched(cluster.tick(now=400)) == ["a1"]


def test_borrowers_within_their_own_limit_are_never_reclaimed() -> None:
    cluster = qm(4, share("a", 2, "LEND"), share("b", 2))
    hold(cluster, "b", 2)
    hold(cluster, "a", 2)
    cluster.submit(job("a1", quota_share_name="a"))
    assert list(cluster.plan(now=100)) == []


def test_waiting_in_quota_head_keeps_free_room_from_borrowers() -> None:
    # a needs 3 of its 4; one is free, the rest is borrowed by b
    cluster = qm(4, share("a", 4, "LEND"), share("b", 0))
    hold(cluster, "b", 3)
    cluster.submit(job("a1", n=3, quota_share_name="a"))
    submit(cluster, "b", 1, at=50)
    result = cluster.plan(now=100)
    assert dispatched(result) == []
    assert len(result.preemptions) == 2


@pytest.mark.parametrize(
    ("in_share", "head_priority", "n", "expected"),
    [
        (True, 9, 1, [("Preempt", "a-low")]),
        (True, 9, 2, [("Preempt", "a-low"), ("Preempt", "a-mid")]),
        (True, 3, 1, [("Preempt", "a-low")]),
        (True, 3, 2, []),
        (True, 1, 1, []),
        (True, 9, 3, [("Block", "urgent")]),
        (False, 9, 1, []),
    ],
)
def test_in_share_preemption_stops_strictly_lower_priority_jobs_of_the_same_share(
    in_share: bool, head_priority: int, n: int, expected: list[tuple[str, str]]
) -> None:
    cluster = qm(4, share("a", 2, "RESERVE", in_share=in_share), share("b", 2, "RESERVE"))
    cluster.submit(running("a-low", quota_share_name="a", priority=1, started_at=5))
    cluster.submit(running("a-mid", quota_share_name="a", priority=3, started_at=50))
    cluster.submit(job("urgent", n=n, priority=head_priority, quota_share_name="a"))
    result = cluster.plan(now=100)
    assert kinds(result) == expected
    assert all(p.kind is PreemptionKind.IN_SHARE for p in result.preemptions)


def test_share_above_its_lowered_limit_loses_its_lowest_priority_newest_jobs() -> None:
    cluster = qm(8, share("a", 2, "RESERVE"))
    for i, (priority, scheduled) in enumerate([(5, 10), (1, 20), (1, 30), (5, 40)]):
        cluster.submit(
            running(f"a{i}", quota_share_name="a", priority=priority, scheduled_at=scheduled)
        )
    result = cluster.plan(now=100)
    assert [(p.job_id, p.kind) for p in result.preemptions] == [
        ("a2", PreemptionKind.SHARE_LIMIT_LOWERED),
        ("a1", PreemptionKind.SHARE_LIMIT_LOWERED),
    ]
    assert {p.reason for p in result.preemptions} == {CROSS_SHARE}


def test_disabled_share_dispatches_nothing_and_its_lane_is_left_alone() -> None:
    cluster = qm(4, share("a", 2, "RESERVE", enabled=False))
    cluster.submit(
        job(
            "a1",
            quota_share_name="a",
            blocked_reason=BlockCode.QUOTA_LIMIT_EXCEEDED,
            blocked_since=0,
        )
    )
    assert list(cluster.plan(now=100)) == []


def test_time_limit_applies_to_each_quota_share_head() -> None:
    action = TimeLimitAction("MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED", 600)
    cluster = qm(8, share("a", 2, "RESERVE"), share("b", 2, "RESERVE"), actions=(action,))
    code = BlockCode.QUOTA_LIMIT_EXCEEDED
    cluster.submit(job("a-big", n=3, quota_share_name="a", blocked_reason=code, blocked_since=0))
    cluster.submit(job("b-big", n=3, quota_share_name="b", blocked_reason=code, blocked_since=1))
    cluster.submit(job("a-next", at=1, quota_share_name="a"))
    assert kinds(cluster.plan(now=600_000)) == [
        ("TimeLimitTerminate", "a-big"),
        ("Dispatch", "a-next"),
    ]


def test_quota_job_with_empty_demand_dispatches_in_a_full_share() -> None:
    cluster = qm(2, share("a", 2, "RESERVE"))
    hold(cluster, "a", 2)
    cluster.submit(job("free", n=0, quota_share_name="a"))
    assert dispatched(cluster.plan(now=100)) == ["free"]


def test_job_of_an_unknown_quota_share_is_left_waiting() -> None:
    cluster = qm(4, share("a", 2, "RESERVE"))
    cluster.submit(job("ghost", quota_share_name="gone"))
    assert list(cluster.plan(now=100)) == []
