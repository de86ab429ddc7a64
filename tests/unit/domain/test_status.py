"""The service-job status machine: every ordered pair of statuses, legal or not."""

from __future__ import annotations

import itertools

import pytest

from batchd.domain.status import (
    ACTIVE,
    DISPATCHED,
    QUEUED,
    TERMINAL,
    IllegalTransition,
    JobStatus,
)

S = JobStatus

# Written out here rather than read from the module, so a change to the table is a change
# to this test too. Dispatched phases may be skipped (a fast job) and may fall back to
# RUNNABLE (retry, capacity error, preemption); nothing leaves a terminal status.
LEGAL: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (S.SUBMITTED, S.RUNNABLE),
        (S.SUBMITTED, S.FAILED),
        (S.PENDING, S.RUNNABLE),
        (S.PENDING, S.FAILED),
        (S.RUNNABLE, S.SCHEDULED),
        (S.RUNNABLE, S.FAILED),
        (S.SCHEDULED, S.STARTING),
        (S.SCHEDULED, S.RUNNING),
        (S.SCHEDULED, S.RUNNABLE),
        (S.SCHEDULED, S.SUCCEEDED),
        (S.SCHEDULED, S.FAILED),
        (S.STARTING, S.RUNNING),
        (S.STARTING, S.RUNNABLE),
        (S.STARTING, S.SUCCEEDED),
        (S.STARTING, S.FAILED),
        (S.RUNNING, S.RUNNABLE),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.FAILED),
    }
)
PAIRS = list(itertools.product(JobStatus, repeat=2))


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p in LEGAL], ids=str)
def test_a_legal_transition_is_allowed_and_checked_returns_the_new_status(
    old: JobStatus, new: JobStatus
) -> None:
    assert old.can_become(new)
    assert old.checked(new) is new


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p not in LEGAL], ids=str)
def test_an_illegal_transition_is_refused_naming_both_statuses(
    old: JobStatus, new: JobStatus
) -> None:
    assert not old.can_become(new)
    with pytest.raises(IllegalTransition) as info:
        old.checked(new)
    assert (info.value.old, info.value.new) == (old, new)
    assert str(info.value) == f"a service job cannot go from {old.value} to {new.value}"


def test_no_status_becomes_itself_and_terminal_statuses_are_final() -> None:
    assert not any(s.can_become(s) for s in JobStatus)
    assert not any(t.can_become(s) for t in TERMINAL for s in JobStatus)


@pytest.mark.parametrize(
    ("status", "group"),
    [
        (S.SUBMITTED, QUEUED),
        (S.PENDING, QUEUED),
        (S.RUNNABLE, QUEUED),
        (S.SCHEDULED, DISPATCHED),
        (S.STARTING, DISPATCHED),
        (S.RUNNING, DISPATCHED),
        (S.SUCCEEDED, TERMINAL),
        (S.FAILED, TERMINAL),
    ],
)
def test_each_status_is_in_exactly_one_group(status: JobStatus, group: frozenset[S]) -> None:
    assert [g for g in (QUEUED, DISPATCHED, TERMINAL) if status in g] == [group]
    assert (status in ACTIVE) is (group is not TERMINAL)


def test_every_non_terminal_status_can_fail() -> None:
    assert all(s.can_become(S.FAILED) for s in ACTIVE)
