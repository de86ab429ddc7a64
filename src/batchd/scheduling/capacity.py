"""Capacity arithmetic of one service environment during one pass (spec §6).

A demand is projected onto the environment's limits: an instance type with its own limit counts
against it, and every instance counts against ``NUM_INSTANCES`` when that limit exists. In an
environment without ``NUM_INSTANCES`` (quota-managed), a type with no limit never fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from batchd.scheduling.model import NUM_INSTANCES, Environment

__all__ = ["EnvironmentCapacity", "can_ever_fit", "project"]


def project(limits: Mapping[str, int], demand: Mapping[str, int]) -> dict[str, int] | None:
    """The demand per limited unit, or None when some instance type can never be placed."""
    counted: dict[str, int] = {}
    total = 0
    pooled = NUM_INSTANCES in limits
    for unit, count in demand.items():
        if count <= 0:
            continue
        total += count
        if unit in limits and unit != NUM_INSTANCES:
            counted[unit] = counted.get(unit, 0) + count
        elif not pooled:
            return None
    if pooled and total:
        counted[NUM_INSTANCES] = total
    return counted


def can_ever_fit(env: Environment, demand: Mapping[str, int]) -> bool:
    """Whether the demand fits the environment's whole (empty) capacity."""
    counted = project(env.limits, demand)
    if counted is None:
        return False
    return all(count <= env.limits[unit] for unit, count in counted.items())


class EnvironmentCapacity:
    """What an environment holds, is taking this pass, and holds back for waiting heads.

    ``releasing`` is capacity held by jobs whose stop is in flight: it will come back, so a head
    that waits for it may claim it instead of asking for more preemptions.
    """

    __slots__ = ("_claimed", "_releasing", "_used", "env")

    def __init__(
        self,
        env: Environment,
        held: Mapping[str, int],
        releasing: Mapping[str, int],
    ) -> None:
        self.env = env
        self._used = self._as_units(held)
        self._releasing = self._as_units(releasing)
        self._claimed: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.env.name

    def can_ever_fit(self, demand: Mapping[str, int]) -> bool:
        return can_ever_fit(self.env, demand)

    def fits(self, demand: Mapping[str, int], holdback: float = 0.0) -> bool:
        """Whether the demand fits now, keeping ``holdback`` of each limit out of reach."""
        counted = project(self.env.limits, demand)
        if counted is None:
            return False
        for unit, count in counted.items():
            limit = self.env.limits[unit]
            reachable = limit - math.floor(limit * holdback)
            if self._taken(unit) + count > reachable:
                return False
        return True

    def take(self, demand: Mapping[str, int]) -> None:
        for unit, count in (project(self.env.limits, demand) or {}).items():
            self._used[unit] = self._used.get(unit, 0) + count

    def free(self, unit: str) -> int:
        return max(0, self.env.limits.get(unit, 0) - self._taken(unit))

    def claim(self, demand: Mapping[str, int]) -> dict[str, int]:
        """Hold back free and releasing capacity for a waiting head; return what is missing."""
        missing: dict[str, int] = {}
        for unit, count in (project(self.env.limits, demand) or {}).items():
            from_free = min(count, self.free(unit))
            from_releasing = min(count - from_free, self._releasing.get(unit, 0))
            self._claimed[unit] = self._claimed.get(unit, 0) + from_free
            self._releasing[unit] = self._releasing.get(unit, 0) - from_releasing
            if count - from_free - from_releasing > 0:
                missing[unit] = count - from_free - from_releasing
        return missing

    def release_later(self, demand: Mapping[str, int]) -> None:
        """A job chosen for preemption this pass will hand its capacity back."""
        for unit, count in (project(self.env.limits, demand) or {}).items():
            self._releasing[unit] = self._releasing.get(unit, 0) + count

    def projected(self, demand: Mapping[str, int]) -> dict[str, int]:
        return project(self.env.limits, demand) or {}

    def _taken(self, unit: str) -> int:
        return self._used.get(unit, 0) + self._claimed.get(unit, 0)

    def _as_units(self, per_type: Mapping[str, int]) -> dict[str, int]:
        units: dict[str, int] = {}
        pooled = NUM_INSTANCES in self.env.limits
        for unit, count in per_type.items():
            if unit in self.env.limits and unit != NUM_INSTANCES:
                units[unit] = units.get(unit, 0) + count
            if pooled:
                units[NUM_INSTANCES] = units.get(NUM_INSTANCES, 0) + count
        return units
