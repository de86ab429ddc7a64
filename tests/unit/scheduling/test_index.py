"""The ordered lane and the job index the runtime maintains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchd.scheduling import Job, JobIndex
from batchd.scheduling.lanes import OrderedLane

from .builders import G6, M5, job, running

# -- OrderedLane ------------------------------------------------------------------------------

_ops = st.lists(
    st.tuples(st.sampled_from(["put", "discard"]), st.integers(0, 30), st.integers(-5, 5)),
    max_size=300,
)


@settings(max_examples=300)
@given(_ops)
def test_lane_reads_in_key_order_whatever_the_history_of_updates(
    ops: list[tuple[str, int, int]],
) -> None:
    lane: OrderedLane[str] = OrderedLane()
    model: dict[str, tuple[int, int, int]] = {}
    for op, item, key in ops:
        item_id = f"i{item}"
        if op == "put":
            lane.put(item_id, (key, item, 0), item_id)
            model[item_id] = (key, item, 0)
        else:
            lane.discard(item_id)
            model.pop(item_id, None)
        expected = sorted(model, key=model.__getitem__)
        assert list(lane) == expected
        assert lane.first() == (expected[0] if expected else None)
        assert len(lane) == len(model)


def test_lane_compacts_stale_entries_after_many_rekeys() -> None:
    lane: OrderedLane[int] = OrderedLane()
    for round_ in range(1_000):
        lane.put("x", (round_, 0, 0), round_)
    assert list(lane) == [999]
    assert len(lane._heap) < 100


def test_reading_the_front_of_a_large_lane_stops_early() -> None:
    lane: OrderedLane[int] = OrderedLane()
    for i in range(10_000):
        lane.put(f"i{i}", (-i, 0, 0), i)
    first = []
    for item in lane:
        first.append(item)
        if len(first) == 3:
            break
    assert first == [9_999, 9_998, 9_997]


# -- JobIndex ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobs", "lane", "expected"),
    [
        # FIFO lane: submission order only
        ([job("b", at=2, priority=9), job("a", at=1)], "", ["a", "b"]),
        # named lanes: priority first, then submission
        (
            [
                job("a", at=1, share_identifier="s"),
                job("b", at=2, share_identifier="s", priority=9),
                job("c", at=0, share_identifier="s"),
            ],
            "s",
            ["b", "c", "a"],
        ),
        ([job("q1", quota_share_name="qs", share_identifier="ignored")], "qs", ["q1"]),
    ],
)
def test_lanes_are_ordered_for_their_kind(jobs: list[Job], lane: str, expected: list[str]) -> None:
    index = JobIndex(jobs)
    assert [j.job_id for j in index.lanes("q")[lane]] == expected


def test_priority_change_reorders_the_lane() -> None:
    index = JobIndex([job("a", at=1, share_identifier="s"), job("b", at=2, share_identifier="s")])
    index.replace(replace(index["b"], priority=5))
    assert [j.job_id for j in index.lanes("q")["s"]] == ["b", "a"]


def test_lanes_disappear_when_empty_and_dispatched_groups_too() -> None:
    index = JobIndex([job("a", share_identifier="s")])
    index.replace(replace(index["a"], status="RUNNING", environment="env", scheduled_at=1))
    assert dict(index.lanes("q")) == {}
    assert dict(index.held_by_lanes("q")) == {"s": {M5: 1}}
    index.remove("a")
    assert dict(index.held_by_lanes("q")) == {}
    assert dict(index.held_in_environment("env")) == {}
    assert len(index) == 0


def test_dispatched_jobs_are_tallied_per_environment_queue_and_lane() -> None:
    index = JobIndex(
        [
            running("r1", demand={M5: 2, G6: 1}, share_identifier="s"),
            running("r2", demand={M5: 1}, share_identifier="t", stopping=True),
            running("r3", "other", demand={M5: 4}),
            running("r4", environment="env2", demand={M5: 8}),
        ]
    )
    assert index.held_in_environment("env") == {M5: 7, G6: 1}
    assert index.releasing_in_environment("env") == {M5: 1}
    assert index.held_by_queue("q") == {M5: 11, G6: 1}
    assert index.held_by_lanes("q") == {"s": {M5: 2, G6: 1}, "t": {M5: 1}, "": {M5: 8}}
    assert set(index.dispatched_in_environment("env")) == {"r1", "r2", "r3"}
    assert set(index.dispatched_in_queue("q")) == {"r1", "r2", "r4"}
    assert set(index.dispatched_in_lane("q", "s")) == {"r1"}


def test_blocked_runnable_jobs_are_tracked_per_lane() -> None:
    index = JobIndex([job("a", blocked_reason="X", blocked_since=0), job("b")])
    assert index.blocked_in_lane("q", "") == {"a"}
    index.replace(replace(index["a"], blocked_reason=None))
    index.replace(replace(index["b"], blocked_reason="Y"))
    assert index.blocked_in_lane("q", "") == {"b"}
    index.remove("b")
    assert index.blocked_in_lane("q", "") == set()


def test_expired_attempts_are_read_earliest_deadline_first_and_stop_at_now() -> None:
    index = JobIndex(
        [
            running("late", scheduled_at=0, attempt_timeout_seconds=30),
            running("early", scheduled_at=0, attempt_timeout_seconds=10),
            running("none", scheduled_at=0),
            running("future", scheduled_at=0, attempt_timeout_seconds=100),
        ]
    )
    assert [j.job_id for j in index.expired_attempts(30_000)] == ["early", "late"]


@pytest.mark.parametrize(
    "bad",
    [
        lambda index: index.add(job("a")),
        lambda index: index.add(job("z", status="SUCCEEDED")),
        lambda index: index.replace(job("missing")),
        lambda index: index.remove("missing"),
    ],
)
def test_index_rejects_duplicates_unknown_ids_and_terminal_jobs(
    bad: Callable[[JobIndex], object],
) -> None:
    index = JobIndex([job("a")])
    with pytest.raises((KeyError, ValueError)):
        bad(index)


def test_last_left_at_records_dispatch_and_timed_removal() -> None:
    index = JobIndex([job("a"), job("b"), job("c")])
    assert index.last_left_at("q") is None
    index.replace(replace(index["a"], status="SCHEDULED", environment="env", scheduled_at=50))
    assert index.last_left_at("q") == 50
    index.remove("b", at=70)
    index.remove("c")
    assert index.last_left_at("q") == 70
