"""The blocker of a waiting job, in words, from the facts the planner recorded."""

from __future__ import annotations

import pytest

from batchd.api.dashboard.explain import WaitFacts, explain_wait
from batchd.scheduling.reasons import (
    ENVIRONMENT_MAX_RESOURCE,
    INSUFFICIENT_CAPACITY,
    QUOTA_BORROW_LIMIT,
    QUOTA_BORROWABLE_CAPACITY,
    QUOTA_SHARE_LIMIT,
)

BASE = {"status": "RUNNABLE", "environment": "env1", "demand": "2 x NUM_INSTANCES"}
HEAD = {"head_job": "big (id-1)", "head_demand": "4 x NUM_INSTANCES"}

CASES = [
    ("finished jobs wait for nothing", {"status": "SUCCEEDED"}, None, ""),
    ("running jobs wait for nothing", {"status": "RUNNING"}, None, ""),
    ("submitted jobs await admission", {"status": "SUBMITTED"}, "admission", "next cycle"),
    ("a disabled queue dispatches nothing", {"queue_enabled": False}, "queue-disabled", "DISABLED"),
    (
        "a disabled environment is named",
        {"environment_usable": False},
        "environment-disabled",
        "env1 is disabled",
    ),
    ("a queue without environment says so", {"environment": None}, "no-environment", "no service"),
    (
        "a capacity error reads as no capacity",
        {"status_reason": INSUFFICIENT_CAPACITY.text, "used": "2 of 2 NUM_INSTANCES in use"},
        "capacity",
        "env1 could not provide the instances (2 of 2 NUM_INSTANCES in use)",
    ),
    (
        "a job bigger than the environment never fits",
        {"status_reason": ENVIRONMENT_MAX_RESOURCE.text},
        "environment-limit",
        "Never fits",
    ),
    (
        "a quota share at its limit",
        {"status_reason": QUOTA_SHARE_LIMIT.text, "share": "team-a"},
        "share-limit",
        "quota share team-a is at its capacity limit",
    ),
    (
        "a quota share at its borrow limit",
        {"status_reason": QUOTA_BORROW_LIMIT.text, "share": "team-a"},
        "borrow-limit",
        "may not borrow more",
    ),
    (
        "nothing left to borrow",
        {"status_reason": QUOTA_BORROWABLE_CAPACITY.text, "share": "team-a"},
        "borrowable-capacity",
        "other shares can lend",
    ),
    (
        "a head that fits is next",
        {"position": 0, "fits": True},
        "next",
        "head of the queue",
    ),
    (
        "a head held for capacity without a reason is out of capacity",
        {"position": 0, "fits": False, "used": "2 of 2 NUM_INSTANCES in use"},
        "capacity",
        "the job needs 2 x NUM_INSTANCES",
    ),
    (
        "behind a head that does not fit in a FIFO queue",
        {"position": 2, "head_fits": False, **HEAD},
        "behind-blocked-head",
        "Waiting behind big (id-1) at the head of a FIFO queue (2 jobs ahead)",
    ),
    (
        "behind a head with a capacity error",
        {"position": 1, "head_reason": INSUFFICIENT_CAPACITY.text, "head_fits": True, **HEAD},
        "behind-blocked-head",
        "(1 job ahead). No capacity",
    ),
    (
        "behind a head that fits, it waits its turn",
        {"position": 3, "head_fits": True, **HEAD},
        "behind",
        "3 jobs ahead in dispatch order",
    ),
    (
        "fair share order is named",
        {"position": 1, "queue_kind": "FAIRSHARE", "head_fits": True, **HEAD},
        "fair-share",
        "fair-share order",
    ),
    (
        "beyond the listed front",
        {"position": None, "front_size": 100},
        "behind",
        "more than 100 jobs",
    ),
]


@pytest.mark.parametrize(
    ("facts", "kind", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_waiting_job_gets_its_blocker_in_words(
    facts: dict[str, object], kind: str | None, words: str
) -> None:
    found = explain_wait(WaitFacts(**{**BASE, **facts}))  # type: ignore[arg-type]
    if kind is None:
        assert found is None
        return
    assert found is not None
    assert (found.kind, words in found.words) == (kind, True), found.words
