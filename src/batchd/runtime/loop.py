"""The runtime: the only writer of live jobs, and the loop that moves them.

Only the replica that holds the scheduling lease runs cycles and controls jobs; the others
serve the API and forward job changes to it through the store. Everything that touches the
runtime's state runs under one lock, so a request never interleaves with a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CollectorRegistry

from batchd.backends.base import Backend
from batchd.clock import Clock, Ids
from batchd.domain.arns import Arns
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import JobQueue
from batchd.domain.status import JobStatus
from batchd.errors import NotFound
from batchd.runtime import control
from batchd.runtime.configuration import load_configuration
from batchd.runtime.core import Core
from batchd.runtime.cycle import Cycle, Outcome
from batchd.runtime.planning import Planning
from batchd.scheduling.queue_view import QueueSnapshot
from batchd.storage.lease import Deposed
from batchd.storage.mailbox import MailKind
from batchd.storage.store import Store

__all__ = ["Runtime"]

log = logging.getLogger("batchd.runtime")

# Let a burst of wakes (a submit storm) gather into one cycle.
_COALESCE_SECONDS = 0.005


class Runtime:
    def __init__(
        self,
        store: Store,
        arns: Arns,
        clock: Clock,
        ids: Ids,
        backends: Mapping[str, Backend],
        default_backend: str,
        tick_seconds: float = 1.0,
    ) -> None:
        self.core = Core(store, arns, clock, ids, backends, default_backend)
        self.cycle = Cycle(self.core)
        self.tick_seconds = tick_seconds
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        # Only the leader schedules; other replicas serve the API and forward job changes.
        self.leading = False
        store.lease.on_work = self.wake  # other replicas' submits and requests, at once

    @property
    def ids(self) -> Ids:
        return self.core.ids

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.core.metrics.registry

    @property
    def alone(self) -> bool:
        """No other replica can hand this one work (its store is private): what it will do
        follows from its own state and clock alone."""
        return self.core.store.private

    @property
    def planning(self) -> Planning:
        return self.core.planning

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, loop: bool = True) -> None:
        """Take the lead if it is free (rebuilding state from the store), then run the loop."""
        await self._follow_or_lead()
        if loop:
            self._task = asyncio.create_task(self._run(), name="batchd-runtime")

    async def _follow_or_lead(self) -> None:
        leading = await self.core.store.lease.hold(self.core.clock.now_ms())
        if leading and not self.leading:
            async with self._lock:
                await self.core.rebuild()  # a new leader starts from the database
        elif not leading and self.leading:
            log.warning("no longer the scheduling leader; another replica schedules now")
            self.core.jobs.clear()
        self.leading = leading

    async def _step_down(self, err: Deposed) -> None:
        """A fenced write found another leader: stop scheduling and acting on backends."""
        log.warning("%s", err)
        self.leading = False
        self.core.jobs.clear()
        await self.core.store.lease.release()

    async def _as_leader(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work`` under the lock if this replica leads; False when it does not, or found
        out from a fenced write that it no longer does (nothing of ``work`` was written)."""
        if not self.leading:
            return False
        try:
            async with self._lock:
                await work()
        except Deposed as err:
            await self._step_down(err)
            return False
        self.wake()
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for backend in self.core.backends.values():
            await backend.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick_seconds)
            await asyncio.sleep(_COALESCE_SECONDS)
            self._wake.clear()
            try:
                await self._follow_or_lead()
                if self.leading:
                    await self.tick(self.core.clock.now_ms())
            except Deposed as err:
                await self._step_down(err)
            except Exception:  # keep scheduling; the next tick starts from durable state
                log.exception("scheduling cycle failed; rebuilding state from the database")
                await asyncio.sleep(self.tick_seconds)
                async with self._lock:
                    await self.core.rebuild()

    async def tick(self, now: int) -> bool:
        """Run exactly one cycle at time ``now``; whether it changed anything."""
        return (await self.run_cycle(now)).changed

    async def run_cycle(self, now: int) -> Outcome:
        """Run exactly one cycle at time ``now``; what it did, and whether another one at
        ``now`` could change anything (``settled``: it could not)."""
        async with self._lock:
            self.ticks += 1
            started = time.perf_counter()
            outcome = await self.cycle.run(now)
            self.core.metrics.cycle.observe(time.perf_counter() - started)
        if outcome.launches_failed:  # their jobs are RUNNABLE again
            self.wake()
        return outcome

    def next_due(self, after: int) -> int | None:
        """The next time later than ``after`` at which something happens with no event: an
        attempt or state time limit, a share forgotten, a backend's job ending by itself
        (for backends that know, like the fake one). For a driver of virtual time."""
        times = [self.core.planning.next_due(after)]
        for backend in self.core.scheduled:
            times.append(backend.next_due(after))
        return min((t for t in times if t is not None), default=None)

    # -- JobControl: what the API asks of the runtime ----------------------------------------

    async def submitted(self, job: ServiceJob) -> None:
        # No lock: an insert between awaits is atomic on the event loop, and a submit storm
        # must not queue behind a cycle that is committing.
        if self.leading and job.status is JobStatus.SUBMITTED:
            self.core.jobs.submitted.put(job)
            self.wake()

    def submitted_count(self, queue: str) -> int | None:
        """Jobs of ``queue`` awaiting admission, when this replica knows (it leads)."""
        return self.core.jobs.submitted.count(queue) if self.leading else None

    def share_known_active(self, queue: str, share: str) -> bool:
        """Whether this replica knows of a RUNNABLE or dispatched job of ``share`` in
        ``queue`` (it leads): True spares a submit the database's answer; False proves
        nothing (others' submits, jobs not yet admitted)."""
        return self.leading and self.core.planning.share_active(queue, share)

    async def terminate(self, job_id: str, reason: str) -> None:
        if not await self._as_leader(lambda: control.terminate(self.core, job_id, reason)):
            await self.core.store.mailbox.post(MailKind.TERMINATE, job_id, {"reason": reason})

    async def stop_training_job(self, name: str) -> None:
        if not await self._as_leader(lambda: control.stop_training_job(self.core, name)):
            await self.core.store.mailbox.post(MailKind.STOP, None, {"name": name})

    async def update(self, job_id: str, change: Callable[[ServiceJob], ServiceJob]) -> ServiceJob:
        updated: list[ServiceJob] = []

        async def work() -> None:
            updated.append(await control.update(self.core, job_id, change))

        if await self._as_leader(work):
            return updated[0]
        # Validate against the stored job here; the leader applies the change.
        job = await self.core.store.job_reads.get(job_id)
        if job is None:
            raise NotFound(f"Service job {job_id} not found")
        new = change(job)
        fields = control.forwardable(job, new)
        if fields:
            await self.core.store.mailbox.post(MailKind.UPDATE, job_id, fields)
        return new

    async def configuration_changed(self) -> None:
        if not await self._as_leader(self.core.reload):
            await self.core.store.mailbox.post(MailKind.RELOAD, None, {})

    async def terminate_queued(
        self, reason: str, queue: str, quota_share: str | None = None
    ) -> None:
        """End every job of a deleted queue or quota share (spec §12 #26), in one commit."""
        job_ids = await self.core.store.job_reads.active_ids(queue, quota_share)
        if not await self._as_leader(lambda: control.terminate_many(self.core, job_ids, reason)):
            await self.core.store.mailbox.post_many(
                MailKind.TERMINATE, [(job_id, {"reason": reason}) for job_id in job_ids]
            )

    async def snapshot(self, queue: JobQueue) -> QueueSnapshot | None:
        core, name = self.core, queue.job_queue_name
        if not self.leading:
            # A follower has no index: build one for this queue alone from the store.
            config = await load_configuration(core.store, core.arns, core.default_backend)
            planning = Planning(core.default_backend, config)
            async for job in core.store.job_reads.stream_active(name):
                planning.add(job)
            return planning.snapshot(name, core.clock.now_ms())
        async with self._lock:
            return core.planning.snapshot(name, core.clock.now_ms())
