"""Fair-share scheduling (spec §7.3)."""

from __future__ import annotations

import pytest

from batchd.scheduling import FairsharePolicy, Queue, UsageLedger
from batchd.scheduling.fairshare import ShareWeights, reserved_fraction

from .builders import Cluster, dispatched, env, job, running, state


def fss(
    *weights: tuple[str, float], reservation: int = 0, decay: int = 600, name: str = "q"
) -> Queue:
    policy = FairsharePolicy(decay, reservation, weights)
    return Queue(name, 1, "env", "FAIRSHARE", fairshare=policy)


@pytest.mark.parametrize(
    ("weights", "share", "expected"),
    [
        ((), "anyone", 1.0),
        ((("a", 0.5),), "a", 0.5),
        ((("a", 0.5),), "ab", 1.0),
        ((("team*", 2.0),), "team-x", 2.0),
        ((("team*", 2.0),), "tea", 1.0),
        ((("team*", 2.0), ("teamx", 0.25)), "teamx", 0.25),
        ((("t*", 3.0), ("team*", 2.0)), "team-y", 2.0),
        ((("*", 5.0),), "", 5.0),
    ],
)
def test_share_weight_uses_exact_then_longest_prefix_then_one(
    weights: tuple[tuple[str, float], ...], share: str, expected: float
) -> None:
    assert ShareWeights(FairsharePolicy(0, 0, weights))(share) == expected


@pytest.mark.parametrize(
    ("reservation", "active", "expected"),
    [(0, 1, 0.0), (50, 1, 0.5), (50, 2, 0.25), (50, 3, 0.125), (25, 2, 0.0625), (99, 0, 1.0)],
)
def test_compute_reservation_holds_back_a_power_of_the_active_share_count(
    reservation: int, active: int, expected: float
) -> None:
    assert reserved_fraction(FairsharePolicy(0, reservation), active) == pytest.approx(expected)


def _with_usage(cluster: Cluster, share: str, instances: int, start: int, stop: int) -> None:
    cluster.ledger.start("q", share, instances, start)
    cluster.ledger.stop("q", share, instances, stop)


def test_fair_share_serves_lighter_share_first() -> None:
    # Given share "heavy" used capacity recently and "light" did not
    jobs = [job("h1", at=1, share_identifier="heavy"), job("l1", at=2, share_identifier="light")]
    cluster = Cluster(state([env(limit=1)], [fss()]), jobs)
    _with_usage(cluster, "heavy", 4, 0, 60_000)
    # Then the light share's (younger) job goes first
    assert dispatched(cluster.plan(now=61_000)) == ["l1"]


def test_fair_share_breaks_a_score_tie_by_the_oldest_head() -> None:
    jobs = [job("b1", at=5, share_identifier="b"), job("a1", at=9, share_identifier="a")]
    cluster = Cluster(state([env(limit=1)], [fss()]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["b1"]


@pytest.mark.parametrize(
    ("weights", "expected_a", "expected_b"),
    [
        ((), 6, 6),
        ((("a", 0.5),), 8, 4),
        ((("b", 3.0),), 9, 3),
        ((("a", 0.125),), 10, 2),
    ],
)
def test_fair_share_splits_free_capacity_in_inverse_proportion_to_weight(
    weights: tuple[tuple[str, float], ...], expected_a: int, expected_b: int
) -> None:
    jobs = [job(f"a{i}", at=i, share_identifier="a") for i in range(20)]
    jobs += [job(f"b{i}", at=i, share_identifier="b") for i in range(20)]
    cluster = Cluster(state([env(limit=12)], [fss(*weights)]), jobs)
    chosen = dispatched(cluster.plan(now=100))
    assert (sum(j[0] == "a" for j in chosen), sum(j[0] == "b" for j in chosen)) == (
        expected_a,
        expected_b,
    )


def test_within_a_share_higher_scheduling_priority_goes_first_then_submission() -> None:
    jobs = [
        job("old-low", at=1, share_identifier="s", priority=1),
        job("new-high", at=5, share_identifier="s", priority=9),
        job("mid-high", at=3, share_identifier="s", priority=9),
    ]
    cluster = Cluster(state([env(limit=2)], [fss()]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["mid-high", "new-high"]


def test_share_whose_head_does_not_fit_waits_while_others_dispatch() -> None:
    jobs = [job("big", at=1, n=4, share_identifier="a"), job("small", at=2, share_identifier="b")]
    cluster = Cluster(state([env(limit=5)], [fss()]), [*jobs, running("r", n=2)])
    assert dispatched(cluster.plan(now=10)) == ["small"]


@pytest.mark.parametrize(
    ("reservation", "expected"),
    [
        # one active share holding capacity: (r/100)^1 of 10 is held back for newcomers
        (0, 10),
        (50, 5),
        (20, 8),
    ],
)
def test_compute_reservation_keeps_capacity_back_from_shares_already_running(
    reservation: int, expected: int
) -> None:
    jobs = [running("r", n=1, share_identifier="a")]
    jobs += [job(f"a{i}", at=i, share_identifier="a") for i in range(20)]
    cluster = Cluster(state([env(limit=10)], [fss(reservation=reservation)]), jobs)
    assert 1 + len(dispatched(cluster.plan(now=100))) == expected


def test_compute_reservation_does_not_apply_to_a_share_holding_nothing() -> None:
    jobs = [running("r", n=8, share_identifier="a"), job("b1", n=2, share_identifier="b")]
    cluster = Cluster(state([env(limit=10)], [fss(reservation=50)]), jobs)
    assert dispatched(cluster.plan(now=100)) == ["b1"]


def test_usage_decays_so_old_work_weighs_less_than_recent_work() -> None:
    # Given "old" used 600 instance-seconds long ago and "recent" 480 just now
    jobs = [job("o", at=1, share_identifier="old"), job("r", at=2, share_identifier="recent")]
    cluster = Cluster(state([env(limit=1)], [fss(decay=600)]), jobs)
    _with_usage(cluster, "old", 10, 0, 60_000)
    _with_usage(cluster, "recent", 8, 500_000, 560_000)
    assert dispatched(cluster.plan(now=570_000)) == ["o"]


def test_zero_decay_means_a_600_second_window() -> None:
    ledger = UsageLedger()
    ledger.configure("q", 0)
    assert ledger.window_seconds("q") == 600


def test_job_with_empty_demand_in_a_full_environment_is_dispatched() -> None:
    jobs = [running("r", n=5, share_identifier="a"), job("free", n=0, share_identifier="b")]
    cluster = Cluster(state([env(limit=5)], [fss()]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["free"]


def test_fair_share_queue_without_a_policy_uses_the_defaults() -> None:
    jobs = [job("a1", at=1, share_identifier="a"), job("b1", at=2, share_identifier="b")]
    queue = Queue("q", 1, "env", "FAIRSHARE")
    assert dispatched(Cluster(state([env(limit=2)], [queue]), jobs).plan(now=5)) == ["a1", "b1"]
