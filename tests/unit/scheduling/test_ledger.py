"""Decayed fair-share usage (spec §7.3)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchd.scheduling import UsageLedger


def _integral(events: list[tuple[int, int]], now: int, window: int) -> float:
    """Step-by-step sum of running(t) * exp(-(now - t)/W) over each constant piece."""
    total = 0.0
    running = 0
    last = None
    for at, delta in sorted(events, key=_starts_first):
        if last is not None and running:
            total += _piece(running, last, at, now, window)
        running += delta
        last = at
    if last is not None and running:
        total += _piece(running, last, now, now, window)
    return total


def _starts_first(event: tuple[int, int]) -> tuple[int, int]:
    return (event[0], -event[1])


def _piece(running: int, start: int, end: int, now: int, window: int) -> float:
    a = (now - end) / 1000.0
    b = (now - start) / 1000.0
    return running * window * (math.exp(-a / window) - math.exp(-b / window))


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.integers(1, 20), st.integers(0, 5_000)), min_size=1, max_size=20),
    st.integers(0, 3_000),
)
def test_ledger_reading_equals_the_decayed_integral_of_running_instances(
    jobs: list[tuple[int, int]], gap: int
) -> None:
    # Given jobs started one second apart and each running for its duration (seconds)
    ledger = UsageLedger()
    ledger.configure("q", 900)
    events: list[tuple[int, int]] = []
    for i, (instances, duration) in enumerate(jobs):
        events += [(i * 1000, instances), (i * 1000 + duration * 1000, -instances)]
    for at, delta in sorted(events, key=_starts_first):
        if delta > 0:
            ledger.start("q", "s", delta, at)
        else:
            ledger.stop("q", "s", -delta, at)
    now = max(at for at, _ in events) + gap * 1000
    # Then the read value is the closed form of the same integral, until a window of idleness
    forgotten = gap >= 900
    assert ledger.running("q", "s") == 0
    expected = 0.0 if forgotten else _integral(events, now, 900)
    assert ledger.usage("q", "s", now) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [
        (0, 600 * 10 * (1 - math.exp(-1))),
        (300, 600 * 10 * (1 - math.exp(-1)) * math.exp(-0.5)),
        (599, 600 * 10 * (1 - math.exp(-1)) * math.exp(-599 / 600)),
        (600, 0.0),
    ],
)
def test_usage_of_an_idle_share_decays_then_is_forgotten_after_one_window(
    elapsed_s: int, expected: float
) -> None:
    ledger = UsageLedger()
    ledger.start("q", "s", 10, 0)
    ledger.stop("q", "s", 10, 600_000)
    now = 600_000 + elapsed_s * 1000
    assert ledger.usage("q", "s", now) == pytest.approx(expected)
    assert (list(ledger.active_shares("q", now)) == ["s"]) is (elapsed_s < 600)


def test_running_share_is_always_active_and_idle_shares_are_pruned() -> None:
    ledger = UsageLedger()
    ledger.start("q", "busy", 1, 0)
    ledger.start("q", "idle", 1, 0)
    ledger.stop("q", "idle", 1, 1_000)
    ledger.start("q", "busy", 1, 10_000_000)
    assert list(ledger.active_shares("q", 10_000_000)) == ["busy"]
    assert ledger._shares["q"].keys() == {"busy"}


def test_window_follows_the_configured_decay() -> None:
    ledger = UsageLedger()
    ledger.configure("q", 60)
    ledger.start("q", "s", 1, 0)
    assert ledger.usage("q", "s", 60_000) == pytest.approx(60 * (1 - math.exp(-1)))


def test_events_out_of_order_never_run_usage_backwards() -> None:
    ledger = UsageLedger()
    ledger.start("q", "s", 2, 10_000)
    before = ledger.usage("q", "s", 20_000)
    ledger.stop("q", "s", 2, 5_000)
    assert ledger.running("q", "s") == 0
    assert ledger.usage("q", "s", 20_000) <= before
