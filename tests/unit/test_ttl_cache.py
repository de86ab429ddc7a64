"""The storage cache: entries expire by an injected clock, and at most ``capacity`` are kept."""

from __future__ import annotations

import pytest

from batchd.storage.cache import MISS, TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cache(capacity: int = 3) -> tuple[TtlCache[str, int | None], Clock]:
    clock = Clock()
    return TtlCache(1.0, clock, capacity), clock


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 7), (0.999, 7), (1.0, MISS), (5.0, MISS)],
)
def test_an_entry_lives_for_the_ttl_of_the_injected_clock(elapsed: float, expected: object) -> None:
    entries, clock = cache()
    entries.put("a", 7)
    clock.now += elapsed
    assert entries.get("a") == expected


def test_none_is_a_value_it_holds_not_a_miss() -> None:
    entries, _ = cache()
    assert entries.get("absent") is MISS
    entries.put("absent", None)
    assert entries.get("absent") is None


def test_the_least_recently_used_entry_goes_first_when_it_is_full() -> None:
    entries, _ = cache(capacity=3)
    for key in "abc":
        entries.put(key, 1)
    assert entries.get("a") == 1  # used: "b" is now the oldest
    entries.put("d", 1)
    assert len(entries) == 3
    assert [entries.get(k) for k in "abcd"] == [1, MISS, 1, 1]


def test_it_never_holds_more_than_its_capacity() -> None:
    entries, _ = cache(capacity=100)
    for i in range(10_000):
        entries.put(f"name-{i}", None)
    assert len(entries) == 100


def test_an_expired_entry_is_dropped_when_read() -> None:
    entries, clock = cache()
    entries.put("a", 1)
    clock.now += 1.0
    assert entries.get("a") is MISS
    assert len(entries) == 0


def test_update_changes_a_held_value_but_not_when_it_expires() -> None:
    entries, clock = cache()
    entries.update("absent", lambda n: (n or 0) + 1)
    assert entries.get("absent") is MISS, "nothing to update is not an insert"
    entries.put("a", 1)
    clock.now += 0.5
    entries.update("a", lambda n: (n or 0) + 1)
    assert entries.get("a") == 2
    clock.now += 0.5
    assert entries.get("a") is MISS


def test_forget_drops_an_entry() -> None:
    entries, _ = cache()
    entries.put("a", 1)
    entries.forget("a")
    entries.forget("never-held")
    assert entries.get("a") is MISS
