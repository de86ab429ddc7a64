"""FIFO queues, head blocking, time limits and attempt timeouts (spec §4.3, §5, §7.1, §7.2)."""

from __future__ import annotations

import pytest

from batchd.scheduling import (
    AttemptTimeout,
    Block,
    BlockCode,
    Environment,
    Queue,
    TimeLimitAction,
    TimeLimitTerminate,
    Unblock,
)

from .builders import G6, M5, Cluster, dispatched, env, job, kinds, running, state

MAX_RESOURCE = (
    "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service environment(s) associated with"
    " the job queue cannot meet the capacity requirement of the job."
)
CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Unable to provision requested compute resources"
)


def fifo(name: str = "q", priority: int = 1, *actions: TimeLimitAction) -> Queue:
    return Queue(name, priority, "env", "FIFO", time_limit_actions=actions)


@pytest.mark.parametrize(
    ("limit", "held", "queued", "expected"),
    [
        (5, [], [1, 1], ["j0", "j1"]),
        (5, [5], [1], []),
        (50, [10] * 5, [10], []),
        (5, [], [1] * 6, ["j0", "j1", "j2", "j3", "j4"]),
        (5, [], [3, 3, 1], ["j0"]),
        (5, [2], [3, 1], ["j0"]),
        (5, [], [0, 5], ["j0", "j1"]),
        (5, [5], [0, 0, 1], ["j0", "j1"]),
        (5, [8], [0], ["j0"]),
        (0, [], [1], []),
    ],
)
def test_fifo_dispatches_in_submission_order_while_the_head_fits(
    limit: int, held: list[int], queued: list[int], expected: list[str]
) -> None:
    # Given jobs already holding capacity and jobs queued in submission order
    jobs = [running(f"r{i}", n=n) for i, n in enumerate(held)]
    jobs += [job(f"j{i}", at=i, n=n) for i, n in enumerate(queued)]
    cluster = Cluster(state([env(limit=limit)], [fifo()]), jobs)
    # When / Then
    assert dispatched(cluster.plan(now=1_000)) == expected


def test_fifo_orders_by_creation_time_not_insertion_or_priority() -> None:
    jobs = [job("late", at=20, priority=99), job("early", at=10), job("mid", at=15)]
    cluster = Cluster(state([env(limit=2)], [fifo()]), jobs)
    assert dispatched(cluster.plan(now=100)) == ["early", "mid"]


@pytest.mark.parametrize(
    ("environment", "demand"),
    [
        (env(limit=5), {M5: 6}),
        (env(limit=5), {M5: 3, G6: 3}),
        (env(limit=None, ml_m5_large=4), {G6: 1}),
        (env(limit=None, ml_m5_large=4), {M5: 5}),
        (env(limit=None), {M5: 1}),
    ],
)
def test_head_that_can_never_fit_blocks_its_queue_with_the_misconfiguration_reason(
    environment: Environment, demand: dict[str, int]
) -> None:
    jobs = [job("big", at=1, demand=demand), job("small", at=2, n=1)]
    cluster = Cluster(state([environment], [fifo()]), jobs)
    result = cluster.plan(now=10)
    assert list(result) == [Block("big", BlockCode.ENVIRONMENT_MAX_RESOURCE, MAX_RESOURCE)]


def test_head_already_showing_its_reason_gets_no_new_decision() -> None:
    blocked = job("big", n=6, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0)
    cluster = Cluster(state([env(limit=5)], [fifo()]), [blocked])
    assert list(cluster.plan(now=10)) == []


LIMIT = TimeLimitAction("MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE", 600)


@pytest.mark.parametrize(
    ("actions", "now", "expected"),
    [
        ((LIMIT,), 599_999, []),
        ((LIMIT,), 600_000, [("TimeLimitTerminate", "big"), ("Dispatch", "next")]),
        ((LIMIT,), 9_000_000, [("TimeLimitTerminate", "big"), ("Dispatch", "next")]),
        ((TimeLimitAction("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 600),), 9_000_000, []),
        ((), 9_000_000, []),
    ],
)
def test_time_limit_action_terminates_a_head_blocked_long_enough_and_the_next_job_moves_up(
    actions: tuple[TimeLimitAction, ...], now: int, expected: list[tuple[str, str]]
) -> None:
    blocked = job("big", n=6, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0)
    cluster = Cluster(state([env(limit=5)], [fifo("q", 1, *actions)]), [blocked, job("next")])
    assert kinds(cluster.plan(now=now)) == expected


def test_time_limit_termination_carries_the_documented_reason() -> None:
    blocked = job("big", n=6, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0)
    cluster = Cluster(state([env(limit=5)], [fifo("q", 1, LIMIT)]), [blocked])
    assert list(cluster.plan(now=600_000)) == [
        TimeLimitTerminate(
            "big",
            BlockCode.ENVIRONMENT_MAX_RESOURCE,
            "Terminated by JobStateTimeLimit action due to reason: "
            "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE",
        )
    ]


def test_successive_blocked_heads_are_each_reported_in_one_pass() -> None:
    first = job("a", at=1, n=6, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0)
    second = job("b", at=2, n=7)
    cluster = Cluster(state([env(limit=5)], [fifo("q", 1, LIMIT)]), [first, second])
    assert kinds(cluster.plan(now=600_000)) == [("TimeLimitTerminate", "a"), ("Block", "b")]


def test_head_whose_environment_grew_is_dispatched_and_a_waiting_one_is_unblocked() -> None:
    # Given two queues whose heads were blocked before the limit was raised to 6
    jobs = [
        job("fits", "q1", n=6, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0),
        job("waits", "q2", n=1, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0),
    ]
    cluster = Cluster(state([env(limit=6)], [fifo("q1", 2), fifo("q2", 1)]), jobs)
    # Then the first runs and the second, merely waiting for capacity, shows no reason
    assert kinds(cluster.plan(now=10)) == [("Dispatch", "fits"), ("Unblock", "waits")]


def test_job_behind_the_head_does_not_keep_a_blocking_reason() -> None:
    jobs = [
        job("head", at=1, n=6),
        job("stale", at=2, blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0),
    ]
    cluster = Cluster(state([env(limit=5)], [fifo()]), jobs)
    assert kinds(cluster.plan(now=10)) == [("Block", "head"), ("Unblock", "stale")]


@pytest.mark.parametrize(
    ("held", "blocked_reason", "expected"),
    [
        (5, None, [Block("cf", BlockCode.INSUFFICIENT_CAPACITY, CAPACITY)]),
        (5, BlockCode.INSUFFICIENT_CAPACITY, []),
        (0, BlockCode.INSUFFICIENT_CAPACITY, [("Dispatch", "cf")]),
        (0, None, [("Dispatch", "cf")]),
    ],
)
def test_capacity_failed_head_shows_the_capacity_reason_only_while_it_waits(
    held: int, blocked_reason: str | None, expected: list[object]
) -> None:
    failed = job("cf", capacity_failed=True, blocked_reason=blocked_reason, blocked_since=0)
    jobs = [failed] + ([running("r", n=held)] if held else [])
    result = Cluster(state([env(limit=5)], [fifo()]), jobs).plan(now=10)
    shown = [d if isinstance(d, Block) else (type(d).__name__, d.job_id) for d in result]
    assert shown == expected


@pytest.mark.parametrize(("now", "terminated"), [(599_999, False), (600_000, True)])
def test_capacity_blocked_time_counts_from_the_first_capacity_failure(
    now: int, terminated: bool
) -> None:
    action = TimeLimitAction("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 600)
    failed = job(
        "cf", capacity_failed=True, blocked_reason=BlockCode.INSUFFICIENT_CAPACITY, blocked_since=0
    )
    result = Cluster(state([env(limit=5)], [fifo("q", 1, action)]), [failed]).plan(now=now)
    assert any(isinstance(d, TimeLimitTerminate) for d in result) is terminated
    assert bool(result.dispatches) is not terminated


def test_disabled_environment_receives_nothing_and_its_heads_are_left_alone() -> None:
    jobs = [
        job("a", n=1),
        job("b", n=9, blocked_reason=BlockCode.INSUFFICIENT_CAPACITY, blocked_since=0),
    ]
    cluster = Cluster(state([env(limit=5, enabled=False)], [fifo()]), jobs)
    assert list(cluster.plan(now=10)) == []


def test_queue_without_an_environment_dispatches_nothing() -> None:
    cluster = Cluster(state([env()], [Queue("q", 1, None)]), [job("a")])
    assert list(cluster.plan(now=10)) == []


def test_lowering_environment_limits_never_preempts_running_work() -> None:
    jobs = [running("r1", n=4), running("r2", n=4), job("a", n=1)]
    cluster = Cluster(state([env(limit=5)], [fifo()]), jobs)
    assert list(cluster.plan(now=10)) == []


def test_queues_sharing_an_environment_are_served_in_descending_priority() -> None:
    jobs = [job("low", "lo", at=1), job("high", "hi", at=2)]
    cluster = Cluster(state([env(limit=1)], [fifo("lo", 1), fifo("hi", 10)]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["high"]


def test_lower_priority_queue_runs_a_smaller_job_when_the_higher_head_does_not_fit() -> None:
    jobs = [running("r", "hi", n=2), job("big", "hi", n=4), job("small", "lo", n=1)]
    cluster = Cluster(state([env(limit=5)], [fifo("lo", 1), fifo("hi", 10)]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["small"]


def test_capacity_of_another_environment_does_not_count() -> None:
    jobs = [running("r", "other", environment="env2", n=5), job("a", n=5)]
    cluster = Cluster(state([env(limit=5), env("env2", limit=5)], [fifo()]), jobs)
    assert dispatched(cluster.plan(now=10)) == ["a"]


@pytest.mark.parametrize(
    ("scheduled_at", "timeout", "now", "expired"),
    [
        (0, 60, 59_999, False),
        (0, 60, 60_000, True),
        (1_000, 1, 2_000, True),
        (1_000, None, 10**12, False),
    ],
)
def test_attempt_times_out_once_its_duration_since_dispatch_is_reached(
    scheduled_at: int, timeout: int | None, now: int, expired: bool
) -> None:
    jobs = [running("r", scheduled_at=scheduled_at, attempt_timeout_seconds=timeout)]
    result = Cluster(state([env()], [fifo()]), jobs).plan(now=now)
    expected = [AttemptTimeout("r", "Job attempt duration exceeded timeout")] if expired else []
    assert list(result) == expected


def test_job_already_stopping_is_not_timed_out_again() -> None:
    jobs = [running("r", scheduled_at=0, attempt_timeout_seconds=1, stopping=True)]
    assert list(Cluster(state([env()], [fifo()]), jobs).plan(now=10_000)) == []


def test_unblock_is_emitted_for_a_stale_reason_even_with_no_capacity() -> None:
    stale = job("a", blocked_reason=BlockCode.ENVIRONMENT_MAX_RESOURCE, blocked_since=0)
    jobs = [running("r", n=5), stale]
    assert list(Cluster(state([env(limit=5)], [fifo()]), jobs).plan(now=10)) == [Unblock("a")]
