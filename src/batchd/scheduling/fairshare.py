"""Fair-share scheduling (spec §7.3): serve the share with the lowest weighted usage first.

A share's score is ``weight * max(U, W * R)``: U is its decayed usage from the ledger, R the
instances it holds now and W the decay window. U alone would ignore a job dispatched a moment ago
(it has not run long enough to weigh anything), so a share could take every free slot in one pass;
W * R is what U converges to if the share keeps holding R instances, so counting it at once gives
the split the weights ask for from the first pass, and dispatching a job raises its share's score by
``weight * W * instances`` within the pass. In steady state U = W * R and shares converge to
capacity in inverse proportion to their weights.

``computeReservation`` r holds ``(r/100) ** active_shares`` of each limit back from shares that
already hold capacity, for shares that are not yet active.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from batchd.scheduling.capacity import EnvironmentCapacity
from batchd.scheduling.context import PassContext, environment_check
from batchd.scheduling.heads import LaneWalker
from batchd.scheduling.index import JobIndex
from batchd.scheduling.ledger import UsageLedger, decay_window_seconds
from batchd.scheduling.model import FairsharePolicy, Job, Queue

__all__ = ["ShareWeights", "fairshare_order", "fairshare_pass", "reserved_fraction"]

_DEFAULT_POLICY = FairsharePolicy()


class ShareWeights:
    """weightFactor lookup: an exact identifier wins, then the longest matching ``prefix*``."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, policy: FairsharePolicy) -> None:
        self._exact: dict[str, float] = {}
        prefixes: list[tuple[str, float]] = []
        for identifier, weight in policy.weights:
            if identifier.endswith("*"):
                prefixes.append((identifier[:-1], weight))
            else:
                self._exact[identifier] = weight
        self._prefixes = sorted(prefixes, key=lambda p: -len(p[0]))

    def __call__(self, share: str) -> float:
        exact = self._exact.get(share)
        if exact is not None:
            return exact
        for prefix, weight in self._prefixes:
            if share.startswith(prefix):
                return weight
        return 1.0


def reserved_fraction(policy: FairsharePolicy, active_shares: int) -> float:
    if policy.compute_reservation <= 0:
        return 0.0
    return float((policy.compute_reservation / 100.0) ** active_shares)


def active_share_count(index: JobIndex, ledger: UsageLedger, queue: str, now: int) -> int:
    """Shares with waiting or dispatched jobs, or with usage inside the decay window."""
    active = set(index.lanes(queue))
    active.update(index.held_by_lanes(queue))
    active.update(ledger.active_shares(queue, now))
    return len(active)


@dataclass(slots=True)
class _Share:
    name: str
    weight: float
    usage: float
    held: int
    window: int

    def entry(self, head: Job) -> tuple[float, int, int, str]:
        score = self.weight * max(self.usage, self.window * self.held)
        return (score, head.created_at, head.seq, self.name)


def _shares(
    index: JobIndex, ledger: UsageLedger, queue: Queue, now: int
) -> tuple[FairsharePolicy, list[_Share]]:
    policy = queue.fairshare or _DEFAULT_POLICY
    window = decay_window_seconds(policy.share_decay_seconds)
    weights = ShareWeights(policy)
    held = index.held_by_lanes(queue.name)
    shares = [
        _Share(
            name=name,
            weight=weights(name),
            usage=ledger.usage(queue.name, name, now),
            held=sum(held.get(name, {}).values()),
            window=window,
        )
        for name in sorted(index.lanes(queue.name))
    ]
    return policy, shares


def fairshare_pass(ctx: PassContext, queue: Queue, cap: EnvironmentCapacity) -> None:
    """Dispatch from the lightest share whose head fits; a share whose head does not fit waits."""
    policy, shares = _shares(ctx.index, ctx.ledger, queue, ctx.now)
    if not shares:
        return
    active = active_share_count(ctx.index, ctx.ledger, queue.name, ctx.now)
    holdback = reserved_fraction(policy, active)
    check = environment_check(cap)
    lanes = ctx.index.lanes(queue.name)
    walkers: dict[str, tuple[_Share, LaneWalker]] = {}
    heap: list[tuple[float, int, int, str]] = []
    for share in shares:
        walker = ctx.walker(queue, share.name, lanes[share.name], check)
        if walker.head is None:
            walker.close()
            continue
        walkers[share.name] = (share, walker)
        heap.append(share.entry(walker.head))
    heapq.heapify(heap)
    while heap:
        share, walker = walkers[heapq.heappop(heap)[3]]
        head = walker.head
        if head is None:
            continue
        if cap.fits(head.demand, holdback if share.held else 0.0):
            cap.take(head.demand)
            share.held += head.instances
            walker.dispatch(cap.name)
            if walker.head is not None:
                heapq.heappush(heap, share.entry(walker.head))
                continue
        else:
            walker.hold()
        walker.close()


def fairshare_order(
    index: JobIndex, ledger: UsageLedger, queue: Queue, now: int, limit: int
) -> list[Job]:
    """The order ``fairshare_pass`` would dispatch in if every job fitted when its turn came."""
    _, shares = _shares(index, ledger, queue, now)
    lanes = index.lanes(queue.name)
    cursors: dict[str, tuple[_Share, Iterator[Job], Job]] = {}
    heap: list[tuple[float, int, int, str]] = []
    for share in shares:
        cursor = iter(lanes[share.name])
        head = next(cursor)
        cursors[share.name] = (share, cursor, head)
        heap.append(share.entry(head))
    heapq.heapify(heap)
    order: list[Job] = []
    while heap and len(order) < limit:
        share, cursor, head = cursors[heapq.heappop(heap)[3]]
        order.append(head)
        share.held += head.instances
        following = next(cursor, None)
        if following is not None:
            cursors[share.name] = (share, cursor, following)
            heapq.heappush(heap, share.entry(following))
    return order
