"""The runtime on a virtual clock: everything due up to a time, in milliseconds of real time.

``advance`` jumps the clock from one due time to the next (a training job of the fake backend
ending, an attempt timeout, a state time limit, a fair share forgotten) and at each runs cycles
until one changes nothing (or can tell the next would not), so a job that lasts an hour ends
after a handful of cycles. The test fixture and the simulator drive the real runtime this way.
"""

from __future__ import annotations

import logging

from batchd.clock import VirtualClock
from batchd.runtime.loop import Runtime

__all__ = ["advance", "settle"]

log = logging.getLogger("batchd.runtime")

# Cycles at one instant before giving up on it settling: a job needs a few (admit and
# dispatch, then one per phase); more means something changes at every cycle.
_SETTLE_LIMIT = 1000


async def settle(runtime: Runtime, now: int) -> int:
    """Run cycles at ``now`` until one changes nothing, or says the next would not; how many
    ran."""
    for count in range(1, _SETTLE_LIMIT + 1):
        outcome = await runtime.run_cycle(now)
        if not outcome.changed or outcome.settled:
            return count
    log.warning("still changing after %d cycles at %d ms; moving on", _SETTLE_LIMIT, now)
    return _SETTLE_LIMIT


async def advance(
    runtime: Runtime, clock: VirtualClock, until_ms: int, *, max_step_ms: int | None = None
) -> int:
    """Run everything due from now until ``until_ms``, leaving the clock there; the number of
    cycles run. ``max_step_ms`` bounds a jump, for backends that cannot say when they are due."""
    cycles = await settle(runtime, clock.now_ms())
    while clock.now_ms() < until_ms:
        now = clock.now_ms()
        horizon = until_ms if max_step_ms is None else min(until_ms, now + max_step_ms)
        due = runtime.next_due(now)
        if (due is None or due > until_ms) and max_step_ms is None and runtime.alone:
            # Nothing is due by ``until_ms``, and nothing can come from elsewhere: a cycle
            # there would change nothing (the simulator submits there next, and its next
            # advance settles that instant).
            clock.set(until_ms)
            break
        clock.set(due if due is not None and due < horizon else horizon)
        cycles += await settle(runtime, clock.now_ms())
    return cycles
