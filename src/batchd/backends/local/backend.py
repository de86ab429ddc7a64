"""``LocalBackend``: SageMaker training jobs run as processes on this machine.

Each ``start`` reserves ``<data_dir>/jobs/<training_job_name>/`` and spawns one task that drives
the attempt (see ``attempt``); ``poll`` reads the attempts' current state without I/O; ``stop``
only signals the attempt's task. Every phase change calls ``wake``.

``close`` stops everything: every live attempt's process groups get SIGTERM, then SIGKILL after
``stop_grace_seconds``, and their tasks end without a terminal report (artifacts are not packed).
After a restart the runtime finds those jobs LOST, which is what ``poll`` answers for names this
instance does not know. Terminal attempts are remembered (the newest ``keep_finished`` of them)
so a late poll still sees their outcome.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from batchd.backends.base import LaunchError, LaunchSpec, Progress, TrainingPhase, Wake
from batchd.backends.local.attempt import Attempt, AttemptSettings
from batchd.backends.local.commands import Launcher, check_runtime
from batchd.backends.local.hostnames import HostsFile
from batchd.backends.local.payload import InvalidRequest, parse_request
from batchd.backends.local.workspace import Workspace, attempt_log_files
from batchd.clock import Clock, SystemClock
from batchd.objectstore import ObjectStore

if TYPE_CHECKING:
    from batchd.settings import Settings

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

    @classmethod
    def from_settings(cls, settings: Settings, wake: Wake) -> LocalBackend:
        """The backend as configured for the server (optional fields read if present)."""
        endpoint = settings.s3_endpoint_url
        store = ObjectStore.s3(endpoint, settings.region) if endpoint else None
        return cls(
            settings.data_dir,
            wake=wake,
            store=store,
            image_commands=settings.image_commands,
            container_runtime=settings.container_runtime,
            stop_grace_seconds=settings.stop_grace_seconds,
            hosts_file=settings.hosts_file,
            clock=SystemClock(),
        )

    async def start(self, spec: LaunchSpec) -> None:
        if self._closed:
            raise LaunchError("InternalFailure", "the local backend is shut down")
        try:
            request = parse_request(spec.training_job_name, spec.payload)
        except InvalidRequest as err:
            raise LaunchError(err.code, err.message) from err
        name = request.name
        if name in self._attempts:
            raise LaunchError("ResourceInUse", f"Training job {name} already exists")
        workspace = Workspace.of(self.data_dir, name)
        attempt = Attempt(spec, request, workspace, self._settings)
        self._attempts[name] = attempt  # claims the name across the await below
        try:
            await asyncio.to_thread(Workspace.reserve, self.data_dir, name)
        except InvalidRequest as err:
            del self._attempts[name]
            raise LaunchError(err.code, err.message) from err
        except OSError as err:
            del self._attempts[name]
            raise LaunchError(
                "InternalFailure", f"cannot create {workspace.job_dir}: {err}"
            ) from err
        self._tasks[name] = asyncio.create_task(self._drive(attempt), name=f"local:{name}")

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
        return [self.describe(name) for name in training_job_names]

    def describe(self, name: str) -> Progress:
        """One job's current state, without I/O (what ``poll`` reports for it)."""
        attempt = self._attempts.get(name)
        if attempt is not None:
            return attempt.progress()
        return Progress(
            training_job_name=name,
            phase=TrainingPhase.LOST,
            failure_reason=f"InternalServerError: the local backend has no record of {name}",
        )

    async def stop(self, training_job_name: str) -> None:
        attempt = self._attempts.get(training_job_name)
        if attempt is not None:
            attempt.request_stop()

    async def close(self) -> None:
        """Kill every live attempt (SIGTERM, SIGKILL after the grace period) and wait."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def log_files(self, training_job_name: str) -> list[Path]:
        """The attempt's log files (``logs/algo-N.log``), ``algo-1`` first."""
        return attempt_log_files(self.data_dir, training_job_name)

    def job_dir(self, training_job_name: str) -> Path:
        return Workspace.of(self.data_dir, training_job_name).job_dir

    def process_groups(self, training_job_name: str) -> list[int]:
        """Process group ids of the attempt's hosts that are still running."""
        attempt = self._attempts.get(training_job_name)
        if attempt is None:
            return []
        return [host.pgid for host in attempt.hosts if not host.finished]

    async def _check_runtime(self) -> str | None:
        runtime = self._launcher.container_runtime
        return None if runtime is None else await check_runtime(runtime)
