"""``LocalBackend``: SageMaker training jobs run as processes on this machine.

Each ``start`` reserves ``<data_dir>/jobs/<training_job_name>/`` and spawns one task that drives
the attempt (see ``attempt``); ``poll`` reads the attempts' current state without I/O; ``stop``
only signals the attempt's task. Every phase change calls ``wake``.

``close`` stops everything: every live attempt's process groups get SIGTERM, then SIGKILL after
``stop_grace_seconds``, and their tasks end without a terminal report (artifacts are not packed).
Terminal attempts are remembered (the newest ``keep_finished`` of them) so a late poll still sees
their outcome.

Restart recovery (see ``recovery``): at construction the backend finds the attempts a previous
server run left unfinished, stops their leftover processes in the background (SIGTERM, SIGKILL
after ``stop_grace_seconds``) and then reports them LOST, so the runtime retries them per their
retryStrategy; until then ``poll`` reports their recorded phase, so they keep their capacity.
An attempt that ended before the crash is reported with its recorded outcome. Other names this
instance does not know are LOST.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping, Sequence
from pathlib import Path

from batchd.backends.base import LaunchError, LaunchSpec, LogEvent, Progress, TrainingPhase, Wake
from batchd.backends.local.attempt import Attempt, AttemptSettings
from batchd.backends.local.commands import Launcher, check_runtime
from batchd.backends.local.hostnames import HostsFile
from batchd.backends.local.objectstore import ObjectStore
from batchd.backends.local.payload import InvalidRequest, check_job_name, parse_request
from batchd.backends.local.reaper import Reaper
from batchd.backends.local.recovery import Journal, Ledger, Leftover, lost_reason
from batchd.backends.local.workspace import (
    Workspace,
    attempt_log_hosts,
    read_attempt_events,
    read_attempt_log,
)
from batchd.clock import Clock, SystemClock

__all__ = ["LocalBackend"]

DEFAULT_STOP_GRACE_SECONDS = 120.0  # SageMaker's docker stop -t120


def _no_wake() -> None:
    return None


class LocalBackend:
    """Runs each training job's hosts as local process groups under the SageMaker contract."""

    name = "local"

    def __init__(
        self,
        data_dir: Path,
        *,
        wake: Wake = _no_wake,
        store: ObjectStore | None = None,
        image_commands: Mapping[str, Sequence[str]] | None = None,
        container_runtime: str | None = None,
        stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
        hosts_file: Path | None = Path("/etc/hosts"),
        extra_env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        keep_finished: int = 4096,
    ) -> None:
        """
        data_dir: jobs go to ``<data_dir>/jobs/``; the default store is ``<data_dir>/s3``.
        image_commands: image name (or ``prefix*``) → argv run for image-only requests.
        container_runtime: ``docker`` or ``podman``, for images with no mapped command.
        hosts_file: where ``algo-N`` names are added; None to never write one.
        extra_env: variables given to every job besides PATH (e.g. S3_ENDPOINT_URL).
        """
        self.data_dir = Path(data_dir)
        self.store = store if store is not None else ObjectStore.local(self.data_dir / "s3")
        # A payload must not read the database, other jobs' trees or the embedded bucket
        # files behind the object store's back.
        self.store.forbid_files_under(self.data_dir)
        self._launcher = Launcher(
            image_commands=dict(image_commands or {}),
            container_runtime=container_runtime,
            extra_env=dict(extra_env or {}),
        )
        self._settings = AttemptSettings(
            store=self.store,
            launcher=self._launcher,
            hosts_file=HostsFile(hosts_file),
            stop_grace_seconds=stop_grace_seconds,
            wake=wake,
            clock_ms=(clock or SystemClock()).now_ms,
            check_runtime=self._check_runtime,
        )
        self._attempts: dict[str, Attempt] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._keep_finished = keep_finished
        self._closed = False
        self._clock_ms = self._settings.clock_ms
        self._wake = wake
        self._ledger = Ledger(self.data_dir)
        leftovers, ended = self._ledger.find_leftovers()
        self._recovered: dict[str, Progress] = {p.training_job_name: p for p in ended}
        self._recovered.update((each.name, each.progress()) for each in leftovers)
        self._leftovers = leftovers
        self._reaper: asyncio.Task[None] | None = None
        self._reap_leftovers()

    async def start(self, spec: LaunchSpec) -> None:
        if self._closed:
            raise LaunchError("InternalFailure", "the local backend is shut down")
        try:
            request = parse_request(spec.training_job_name, spec.payload)
        except InvalidRequest as err:
            raise LaunchError(err.code, err.message) from err
        name = request.name
        self._reap_leftovers()
        if name in self._attempts or name in self._recovered:
            raise LaunchError("ResourceInUse", f"Training job {name} already exists")
        workspace = Workspace.of(self.data_dir, name)
        journal = self._ledger.journal(name, workspace.job_dir)
        attempt = Attempt(spec, request, workspace, self._settings, journal)
        self._attempts[name] = attempt  # claims the name across the await below
        try:
            await asyncio.to_thread(self._reserve, name, journal)
        except InvalidRequest as err:
            del self._attempts[name]
            raise LaunchError(err.code, err.message) from err
        except OSError as err:
            del self._attempts[name]
            raise LaunchError(
                "InternalFailure", f"cannot create {workspace.job_dir}: {err}"
            ) from err
        self._tasks[name] = asyncio.create_task(self._drive(attempt), name=f"local:{name}")

    def _reserve(self, name: str, journal: Journal) -> None:
        Workspace.reserve(self.data_dir, name)
        journal.open(self._clock_ms())

    async def _drive(self, attempt: Attempt) -> None:
        name = attempt.request.name
        try:
            await attempt.run()
        finally:
            self._tasks.pop(name, None)
        self._finished.append(name)
        while len(self._finished) > self._keep_finished:
            self._attempts.pop(self._finished.popleft(), None)

    async def poll(self, training_job_names: Sequence[str]) -> Sequence[Progress]:
        self._reap_leftovers()
        unknown = [
            name
            for name in training_job_names
            if name not in self._attempts and name not in self._recovered
        ]
        if unknown:
            for name, outcome in await asyncio.to_thread(self._recorded_outcomes, unknown):
                self._recovered[name] = outcome
        return [self.describe(name) for name in training_job_names]

    def _recorded_outcomes(self, names: Sequence[str]) -> list[tuple[str, Progress]]:
        """Outcomes a previous run recorded for ``names`` before the runtime saw them."""
        found = []
        for name in names:
            try:
                outcome = self._ledger.finished(check_job_name(name))
            except InvalidRequest:
                continue
            if outcome is not None:
                found.append((name, outcome))
        return found

    def describe(self, name: str) -> Progress:
        """One job's current state, without I/O (what ``poll`` reports for it)."""
        attempt = self._attempts.get(name)
        if attempt is not None:
            return attempt.progress()
        recovered = self._recovered.get(name)
        if recovered is not None:
            return recovered
        return Progress(
            training_job_name=name,
            phase=TrainingPhase.LOST,
            failure_reason=lost_reason(name, "the local backend has no record of it"),
        )

    async def stop(self, training_job_name: str) -> None:
        attempt = self._attempts.get(training_job_name)
        if attempt is not None:
            attempt.request_stop()

    async def close(self) -> None:
        """Kill every live attempt (SIGTERM, SIGKILL after the grace period) and wait, also
        for the leftovers of a previous run being stopped."""
        self._closed = True
        self._reap_leftovers()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._reaper is not None:
            await asyncio.gather(self._reaper, return_exceptions=True)
        self._ledger.retire()

    def _reap_leftovers(self) -> None:
        """Start stopping the previous run's leftovers, once an event loop runs."""
        if self._reaper is not None or not self._leftovers:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        reaper = Reaper(self._leftovers, self._settings.stop_grace_seconds, self._reaped)
        self._leftovers = []
        self._reaper = asyncio.create_task(reaper.run(), name="local:recovery")

    def _reaped(self, leftover: Leftover, reason: str) -> None:
        lost = Progress(
            training_job_name=leftover.name,
            phase=TrainingPhase.LOST,
            failure_reason=reason,
            at_ms=self._clock_ms(),
        )
        self._recovered[leftover.name] = lost
        self._ledger.ended(leftover, lost)
        self._wake()

    async def log_hosts(self, training_job_name: str) -> Sequence[str]:
        """Hosts with a ``logs/algo-N.log``, also of attempts of earlier server runs."""
        return await asyncio.to_thread(attempt_log_hosts, self.data_dir, training_job_name)

    async def read_log(self, training_job_name: str, host: str, offset: int, limit: int) -> bytes:
        return await asyncio.to_thread(
            read_attempt_log, self.data_dir, training_job_name, host, offset, limit
        )

    async def read_events(
        self, training_job_name: str, host: str, start: int, limit: int
    ) -> tuple[Sequence[LogEvent], int]:
        return await asyncio.to_thread(
            read_attempt_events, self.data_dir, training_job_name, host, start, limit
        )

    def job_dir(self, training_job_name: str) -> Path:
        return Workspace.of(self.data_dir, training_job_name).job_dir

    def process_groups(self, training_job_name: str) -> list[int]:
        """Process group ids of the attempt's hosts that are still running."""
        attempt = self._attempts.get(training_job_name)
        if attempt is None:
            return []
        return [host.pgid for host in attempt.hosts if not host.finished]

    @property
    def recovering(self) -> bool:
        """Whether leftovers of a previous run are still being stopped."""
        return bool(self._leftovers) or (self._reaper is not None and not self._reaper.done())

    async def _check_runtime(self) -> str | None:
        runtime = self._launcher.container_runtime
        return None if runtime is None else await check_runtime(runtime)
