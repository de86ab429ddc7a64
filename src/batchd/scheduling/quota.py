"""Quota-share arithmetic of one quota-managed queue during one pass (spec §7.4, §12 #24).

Per instance type u, with own(s,u) a share's limit and used(s,u) what its dispatched jobs hold:

* idle(s,u) = max(0, own - used); borrowed(s,u) = max(0, used - own);
* lendable capacity = idle of LEND and LEND_AND_BORROW shares, plus the environment's capacity no
  share limit covers (unassigned), minus what is already borrowed. RESERVE shares never lend.

A LEND_AND_BORROW share may borrow while its borrowed total stays within ``borrow_limit`` percent of
its own limit (-1: unlimited) and within what the others lend. Borrowing is allowed for a type the
share has no limit for only when borrowing is unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from batchd.scheduling.index import Tally
from batchd.scheduling.model import Environment, QuotaShare
from batchd.scheduling.reasons import (
    QUOTA_BORROW_LIMIT,
    QUOTA_BORROWABLE_CAPACITY,
    QUOTA_SHARE_LIMIT,
    BlockReason,
)

__all__ = ["QuotaBook"]


def _lends(share: QuotaShare) -> bool:
    return share.strategy != "RESERVE"


def _ceiling(share: QuotaShare, unit: str) -> int | None:
    """The most a share may hold of a type, borrowing included; None means no ceiling."""
    own = share.limits.get(unit, 0)
    if share.strategy != "LEND_AND_BORROW":
        return own
    if share.borrow_limit < 0:
        return None
    return own + own * share.borrow_limit // 100


class QuotaBook:
    """Own, used, lendable and borrowed capacity per quota share and instance type."""

    __slots__ = (
        "_borrowed",
        "_configured_lendable",
        "_lendable_idle",
        "_unassigned",
        "releasing",
        "shares",
        "used",
    )

    def __init__(
        self,
        shares: Iterable[QuotaShare],
        env: Environment,
        held: Mapping[str, Mapping[str, int]],
        releasing: Mapping[str, Mapping[str, int]],
    ) -> None:
        self.shares = {share.name: share for share in shares}
        self.used = {name: Tally(held.get(name, {})) for name in self.shares}
        self.releasing = {name: Tally(releasing.get(name, {})) for name in self.shares}
        assigned = Tally()
        self._configured_lendable = Tally()
        self._lendable_idle = Tally()
        self._borrowed = Tally()
        for share in self.shares.values():
            assigned.add(share.limits)
            if _lends(share):
                self._configured_lendable.add(share.limits)
            self._count(share, 1)
        self._unassigned = {
            unit: max(0, limit - assigned.get(unit, 0)) for unit, limit in env.limits.items()
        }

    def own(self, share: str, unit: str) -> int:
        return self.shares[share].limits.get(unit, 0)

    def borrowed(self, share: str, unit: str) -> int:
        return max(0, self.used[share].get(unit, 0) - self.own(share, unit))

    def borrowed_after_stops(self, share: str, unit: str) -> int:
        """What the share still borrows once the stops in flight complete."""
        held = self.used[share].get(unit, 0) - self.releasing[share].get(unit, 0)
        return max(0, held - self.own(share, unit))

    def fits_own(self, share: str, demand: Mapping[str, int]) -> bool:
        used = self.used[share]
        return all(
            used.get(unit, 0) + count <= self.own(share, unit) for unit, count in demand.items()
        )

    def could_fit_own(self, share: str, demand: Mapping[str, int]) -> bool:
        """Whether the demand fits the share's own limits when it holds nothing."""
        return all(count <= self.own(share, unit) for unit, count in demand.items())

    def can_borrow(self, share: str, demand: Mapping[str, int]) -> bool:
        """Whether the share may take the demand now, borrowing what its own limits lack."""
        quota = self.shares[share]
        if quota.strategy != "LEND_AND_BORROW":
            return False
        used = self.used[share]
        for unit, count in demand.items():
            if not count:
                continue
            after = used.get(unit, 0) + count
            ceiling = _ceiling(quota, unit)
            if ceiling is not None and after > ceiling:
                return False
            if max(0, after - self.own(share, unit)) > self._lent_by_others(share, unit):
                return False
        return True

    def static_reason(self, share: str, demand: Mapping[str, int]) -> BlockReason | None:
        """The §4.3 QUOTA_MANAGEMENT_LIMIT_EXCEEDED reason when the job can never be placed."""
        quota = self.shares[share]
        for unit, count in demand.items():
            own = self.own(share, unit)
            if count <= own:
                continue
            if quota.strategy != "LEND_AND_BORROW":
                return QUOTA_SHARE_LIMIT
            ceiling = _ceiling(quota, unit)
            if ceiling is not None and count > ceiling:
                return QUOTA_BORROW_LIMIT
            others = self._configured_lendable.get(unit, 0) - own
            if count > own + others + self._unassigned.get(unit, 0):
                return QUOTA_BORROWABLE_CAPACITY
        return None

    def excess(self, share: str) -> dict[str, int]:
        """What the share holds beyond its ceilings (after stops in flight), per type."""
        quota = self.shares[share]
        releasing = self.releasing[share]
        over: dict[str, int] = {}
        for unit, count in self.used[share].items():
            ceiling = _ceiling(quota, unit)
            effective = count - releasing.get(unit, 0)
            if ceiling is not None and effective > ceiling:
                over[unit] = effective - ceiling
        return over

    def shortfall_in_share(self, share: str, demand: Mapping[str, int]) -> dict[str, int]:
        """What the share would have to stop, beyond stops in flight, to fit the demand."""
        used = self.used[share]
        releasing = self.releasing[share]
        short: dict[str, int] = {}
        for unit, count in demand.items():
            effective = used.get(unit, 0) - releasing.get(unit, 0)
            missing = effective + count - self.own(share, unit)
            if missing > 0:
                short[unit] = missing
        return short

    def take(self, share: str, demand: Mapping[str, int]) -> None:
        quota = self.shares[share]
        self._count(quota, -1)
        self.used[share].add(demand)
        self._count(quota, 1)

    def mark_releasing(self, share: str, demand: Mapping[str, int]) -> None:
        self.releasing[share].add(demand)

    def _lent_by_others(self, share: str, unit: str) -> int:
        quota = self.shares[share]
        own_idle = max(0, self.own(share, unit) - self.used[share].get(unit, 0))
        others_idle = self._lendable_idle.get(unit, 0) - (own_idle if _lends(quota) else 0)
        others_borrowed = self._borrowed.get(unit, 0) - self.borrowed(share, unit)
        return others_idle + self._unassigned.get(unit, 0) - others_borrowed

    def _count(self, quota: QuotaShare, sign: int) -> None:
        """Add (or take out) one share's part of the lendable and borrowed totals."""
        used = self.used[quota.name]
        for unit in set(quota.limits) | set(used):
            own = quota.limits.get(unit, 0)
            have = used.get(unit, 0)
            if _lends(quota) and own > have:
                self._lendable_idle.add({unit: own - have}, sign)
            if have > own:
                self._borrowed.add({unit: have - own}, sign)
