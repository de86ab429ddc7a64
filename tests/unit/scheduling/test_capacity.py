"""Capacity arithmetic (spec §6)."""

from __future__ import annotations

import pytest

from batchd.scheduling import Environment
from batchd.scheduling.capacity import EnvironmentCapacity, can_ever_fit

from .builders import G6, M5

POOLED = Environment("env", True, {"NUM_INSTANCES": 10})
TYPED = Environment("env", True, {M5: 4, G6: 2})


@pytest.mark.parametrize(
    ("environment", "held", "demand", "fits", "ever"),
    [
        (POOLED, {}, {M5: 10}, True, True),
        (POOLED, {}, {M5: 6, G6: 5}, False, False),
        (POOLED, {M5: 3, G6: 2}, {G6: 5}, True, True),
        (POOLED, {M5: 3, G6: 2}, {G6: 6}, False, True),
        (POOLED, {M5: 12}, {}, True, True),
        (TYPED, {}, {M5: 4, G6: 2}, True, True),
        (TYPED, {M5: 1}, {M5: 4}, False, True),
        (TYPED, {M5: 4}, {G6: 2}, True, True),
        (TYPED, {}, {"ml.p4d.24xlarge": 1}, False, False),
        (TYPED, {}, {M5: 5}, False, False),
        (TYPED, {}, {M5: 0, "ml.p4d.24xlarge": 0}, True, True),
    ],
)
def test_demand_fits_what_the_environment_has_left_and_its_whole_capacity(
    environment: Environment,
    held: dict[str, int],
    demand: dict[str, int],
    fits: bool,
    ever: bool,
) -> None:
    assert EnvironmentCapacity(environment, held, {}).fits(demand) is fits
    assert can_ever_fit(environment, demand) is ever


@pytest.mark.parametrize(
    ("holdback", "held", "fits"),
    [(0.5, 4, True), (0.5, 5, False), (0.25, 7, True), (0.25, 8, False)],
)
def test_holdback_keeps_the_floor_of_a_fraction_of_each_limit_out_of_reach(
    holdback: float, held: int, fits: bool
) -> None:
    cap = EnvironmentCapacity(POOLED, {M5: held}, {})
    assert cap.fits({M5: 1}, holdback) is fits


def test_claim_uses_free_then_releasing_capacity_and_reports_the_rest() -> None:
    cap = EnvironmentCapacity(TYPED, {M5: 3}, {M5: 1})
    assert cap.claim({M5: 4}) == {M5: 2}
    assert not cap.fits({M5: 1})
    cap.release_later({M5: 2})
    assert cap.claim({M5: 2}) == {}
