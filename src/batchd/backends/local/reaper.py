"""Stopping what a killed server left running: the leftovers ``recovery`` found.

Every process of a leftover gets SIGTERM, SIGKILL after the grace period and again until none
is left (bounded: a process that survives ``_KILL_PATIENCE_SECONDS`` of SIGKILL is given up
on), then the leftover's cleanup commands run and it is reported LOST. Which processes are a
leftover's is ``procfs``'s answer (see ``recovery`` for the rules).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from batchd.backends.local.procfs import ProcessTable, proc_available
from batchd.backends.local.recovery import Leftover, lost_reason

__all__ = ["Reaper", "Report"]

_log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
_KILL_PATIENCE_SECONDS = 10.0
_CLEANUP_TIMEOUT_SECONDS = 60.0

Report = Callable[[Leftover, str], None]


@dataclass
class _Reaping:
    leftover: Leftover
    seen: set[int] = field(default_factory=set)
    term_at: float | None = None
    kill_at: float | None = None


class Reaper:
    """Stops every process of the leftovers and reports each one once it has none left."""

    def __init__(self, leftovers: Iterable[Leftover], grace_seconds: float, report: Report) -> None:
        self._leftovers = list(leftovers)
        self._grace = grace_seconds
        self._report = report

    async def run(self) -> None:
        if not proc_available():
            for leftover in self._leftovers:
                _log.warning(
                    "training job %s: cannot check its processes (no /proc)", leftover.name
                )
                self._report(
                    leftover, lost_reason(leftover.name, "its processes could not be checked")
                )
            return
        pending = {each.name: _Reaping(each) for each in self._leftovers}
        finishing: list[asyncio.Task[None]] = []
        try:
            await self._reap(pending, finishing)
        except Exception as err:  # never leave a job waiting on a recovery that broke
            _log.exception("restart recovery failed")
            for name, state in pending.items():
                detail = f"its processes could not be checked: {err}"
                self._report(state.leftover, lost_reason(name, detail))
        await asyncio.gather(*finishing)

    async def _reap(
        self, pending: dict[str, _Reaping], finishing: list[asyncio.Task[None]]
    ) -> None:
        """Signal and watch until no leftover in ``pending`` has a process (removing each)."""
        loop = asyncio.get_running_loop()
        marks: dict[tuple[int, int], tuple[str | None, str | None]] = {}
        while pending:
            table = await asyncio.to_thread(ProcessTable.scan, marks)
            now = loop.time()
            for name, state in list(pending.items()):
                targets = table.of(state.leftover)
                state.seen |= targets.pids
                stuck = state.kill_at is not None and now - state.kill_at > _KILL_PATIENCE_SECONDS
                if not targets or stuck:
                    del pending[name]
                    finishing.append(asyncio.create_task(self._finish(state, targets.pids)))
                elif state.term_at is None:
                    targets.send(signal.SIGTERM)
                    state.term_at = now
                elif now - state.term_at >= self._grace:
                    targets.send(signal.SIGKILL)
                    state.kill_at = state.kill_at if state.kill_at is not None else now
            if pending:
                await asyncio.sleep(_POLL_SECONDS)

    async def _finish(self, state: _Reaping, left: set[int]) -> None:
        leftover = state.leftover
        for argv in leftover.cleanups:
            await _run_quietly(argv)
        stopped = len(state.seen - left)
        if left:
            _log.error(
                "training job %s: processes %s survived SIGKILL", leftover.name, sorted(left)
            )
            detail = f"{len(left)} of its processes could not be stopped"
        elif stopped:
            _log.warning(
                "training job %s: stopped %d process(es) left by a previous batchd run",
                leftover.name,
                stopped,
            )
            noun = "process was" if stopped == 1 else "processes were"
            detail = f"{stopped} leftover {noun} stopped"
        elif leftover.launched:
            detail = "none of its processes was still running"
        else:
            detail = "it had not started any process yet"
        self._report(leftover, lost_reason(leftover.name, detail))


async def _run_quietly(argv: Sequence[str]) -> None:
    """A cleanup command (``docker rm -f ...``), bounded; failures are only logged."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as err:
        _log.warning("cleanup %s failed: %s", list(argv), err)
        return
    try:
        await asyncio.wait_for(process.wait(), _CLEANUP_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
