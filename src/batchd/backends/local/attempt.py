"""One attempt's lifecycle: PENDING → DOWNLOADING → TRAINING → COMPLETED | FAILED | STOPPED.

``Attempt.run`` is the single task that drives an attempt. Blocking work (building the tree,
staging inputs, packing artifacts) runs in threads; processes are awaited on the event loop.
``MaxRuntimeInSeconds`` counts from DOWNLOADING (SageMaker's training start) and covers staging
and training; when it runs out, or ``request_stop`` is called, every host's process group gets
SIGTERM, then SIGKILL after the grace period, and the attempt ends STOPPED with its artifacts
packed. The job succeeds only if every host exits 0; the first host to fail stops the others.
Every phase change and every launched host is written to the attempt's ``Journal`` (see
``recovery``), so a server started after a crash can find and stop what this one left.
"""

from __future__ import annotations

import asyncio
import logging
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from batchd.backends.base import LaunchSpec, Progress, TrainingPhase, Wake
from batchd.backends.local.artifacts import upload_artifacts, upload_failure
from batchd.backends.local.channels import StagingError, stage_channels
from batchd.backends.local.commands import HostCommand, Launcher
from batchd.backends.local.hostnames import HostsFile
from batchd.backends.local.objectstore import ObjectStore, ObjectStoreError
from batchd.backends.local.payload import TrainingRequest
from batchd.backends.local.processes import HostProcess, SpawnError
from batchd.backends.local.recovery import Journal
from batchd.backends.local.sourcedir import stage_source
from batchd.backends.local.workspace import Workspace

__all__ = ["Attempt", "AttemptSettings", "algorithm_error"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
FAILURE_REASON_LIMIT = 1024
MAX_RUNTIME_REASON = (
    "MaxRuntimeExceeded: Training job runtime exceeded MaxRuntimeInSeconds provided"
)
STOPPED_REASON = "Training job stopped"


@dataclass(frozen=True)
class AttemptSettings:
    """What every attempt of one backend shares."""

    store: ObjectStore
    launcher: Launcher
    hosts_file: HostsFile
    stop_grace_seconds: float
    wake: Wake
    clock_ms: Callable[[], int]
    check_runtime: Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class _Outcome:
    phase: TrainingPhase
    reason: str | None = None
    pack: bool = False


class _Interrupted(Exception):
    """Staging was cut short by a stop request or by MaxRuntimeInSeconds."""


class Attempt:
    def __init__(
        self,
        spec: LaunchSpec,
        request: TrainingRequest,
        workspace: Workspace,
        settings: AttemptSettings,
        journal: Journal | None = None,
    ) -> None:
        self.spec = spec
        self.journal = journal
        self.request = request
        self.workspace = workspace
        self.settings = settings
        self.phase = TrainingPhase.PENDING
        self.at_ms = settings.clock_ms()
        self.failure_reason: str | None = None
        self.model_artifacts: str | None = None
        self.uploading_at_ms: int | None = None
        self.stopped_by_request = False
        self.hosts: list[HostProcess] = []
        self._interrupt = asyncio.Event()
        self._deadline: float | None = None
        self._timed_out = False
        self._background: set[asyncio.Future[Any]] = set()

    def progress(self) -> Progress:
        return Progress(
            training_job_name=self.spec.training_job_name,
            phase=self.phase,
            failure_reason=self.failure_reason,
            at_ms=self.at_ms,
            model_artifacts=self.model_artifacts,
            uploading_at_ms=self.uploading_at_ms,
            stopped_by_request=self.stopped_by_request,
        )

    def request_stop(self) -> None:
        if not self.phase.terminal and not self.stopped_by_request:
            self.stopped_by_request = True
            self._interrupt.set()

    async def run(self) -> None:
        """Drive the attempt to a terminal phase; on cancellation (backend close) kill it."""
        try:
            outcome = await self._run()
        except asyncio.CancelledError:
            await self._terminate_hosts()
            raise
        except Exception as err:  # a bug or an unexpected OS error fails only this attempt
            _log.exception("training job %s failed unexpectedly", self.request.name)
            await self._terminate_hosts()
            outcome = _Outcome(TrainingPhase.FAILED, f"InternalServerError: {err}")
        if outcome.pack:
            outcome = await self._pack(outcome)
        self.failure_reason = outcome.reason
        self._enter(outcome.phase)

    def _enter(self, phase: TrainingPhase) -> None:
        self.phase = phase
        self.at_ms = self.settings.clock_ms()
        if self.journal is not None:
            self.journal.phase(self.progress())
        self.settings.wake()

    async def _run(self) -> _Outcome:
        launcher, request = self.settings.launcher, self.request
        program = launcher.program(request)
        if program is None:
            problem = None
            if launcher.container_runtime is not None:
                problem = await self.settings.check_runtime()
            if launcher.container_runtime is None or problem is not None:
                return _Outcome(TrainingPhase.FAILED, launcher.unrunnable(request, problem))
        self._enter(TrainingPhase.DOWNLOADING)
        if request.max_runtime_seconds is not None:
            self._deadline = asyncio.get_running_loop().time() + request.max_runtime_seconds
        try:
            hosts_resolve = await self._in_thread_until_interrupted(self._prepare)
            commands = [
                self._command(program, host, hosts_resolve) for host in request.cluster.hosts
            ]
            await self._launch(commands)
        except _Interrupted:
            return self._interrupted(pack=False)
        except StagingError as err:
            return _Outcome(TrainingPhase.FAILED, str(err)[:FAILURE_REASON_LIMIT])
        except SpawnError as err:
            await self._terminate_hosts()
            return _Outcome(TrainingPhase.FAILED, f"ClientError: {err}"[:FAILURE_REASON_LIMIT])
        self._enter(TrainingPhase.TRAINING)
        return await self._supervise()

    def _prepare(self) -> bool:
        """Build the tree, stage code and data, make host names resolve (blocking)."""
        workspace, request, store = self.workspace, self.request, self.settings.store
        workspace.build(request)
        stage_source(store, workspace, request)
        stage_channels(store, workspace, request)
        problem = self.settings.hosts_file.ensure(request.cluster.hosts)
        if problem is not None:
            for host in request.cluster.hosts:
                workspace.note(
                    host,
                    self.settings.clock_ms(),
                    f"host names may not resolve ({problem}); "
                    "SM_STUDIO_LOCAL_MODE=true is set to skip the toolkit's DNS wait",
                )
        return problem is None

    def _command(self, program: tuple[str, ...] | None, host: str, resolve: bool) -> HostCommand:
        base = self.workspace.base(host)
        launcher, spec = self.settings.launcher, self.spec
        env = launcher.environment(
            self.request, host, base, spec.training_job_arn, spec.region, hosts_resolve=resolve
        )
        if program is not None:
            return launcher.direct(program, env, base)
        return launcher.in_container(self.request, host, env, base)

    async def _launch(self, commands: list[HostCommand]) -> None:
        for host, command in zip(self.request.cluster.hosts, commands, strict=True):
            log = self.workspace.log_path(host)
            process = await HostProcess.launch(
                host,
                command.argv,
                env=command.env,
                cwd=command.cwd,
                log_path=log,
                clock_ms=self.settings.clock_ms,
                cleanup=command.cleanup,
            )
            self.hosts.append(process)
            if self.journal is not None:
                self.journal.launched(host, process.pid, command.cleanup)

    async def _in_thread_until_interrupted(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` in a thread; raise _Interrupted on a stop request or the deadline."""
        if self._interrupt.is_set():
            raise _Interrupted
        task = asyncio.ensure_future(asyncio.to_thread(work))
        interrupt = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait(
                (task, interrupt), timeout=self._remaining(), return_when="FIRST_COMPLETED"
            )
        finally:
            interrupt.cancel()
        if task.done():
            return task.result()
        self._timed_out = not self._interrupt.is_set()
        self._background.add(task)  # a thread cannot be cancelled; let it finish quietly
        task.add_done_callback(self._forget)
        raise _Interrupted

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned staging error is not worth a warning

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    async def _exit_of(self, index: int) -> tuple[int, int] | None:
        return index, await self.hosts[index].wait()

    async def _stop_requested(self) -> tuple[int, int] | None:
        await self._interrupt.wait()
        return None

    async def _supervise(self) -> _Outcome:
        """Wait for every host to exit 0, or the first failure, stop request or deadline."""
        interrupt = asyncio.ensure_future(self._stop_requested())
        pending = {asyncio.ensure_future(self._exit_of(i)) for i in range(len(self.hosts))}
        failed: tuple[int, int] | None = None
        try:
            while pending and failed is None:
                done, pending = await asyncio.wait(
                    pending | {interrupt}, timeout=self._remaining(), return_when="FIRST_COMPLETED"
                )
                pending.discard(interrupt)
                if interrupt.done():
                    break
                if not done:
                    self._timed_out = True
                    break
                exits = sorted(exit for task in done if (exit := task.result()) is not None)
                failed = next(((i, code) for i, code in exits if code != 0), None)
        finally:
            interrupt.cancel()
            for waiting in pending:
                waiting.cancel()
        if pending or failed is not None:
            await self._terminate_hosts()
        if self.stopped_by_request or self._timed_out:
            return self._interrupted(pack=True)
        if failed is not None:
            host, code = self.hosts[failed[0]], failed[1]
            return _Outcome(TrainingPhase.FAILED, await self._failure_reason(host, code))
        return _Outcome(TrainingPhase.COMPLETED, pack=True)

    def _interrupted(self, pack: bool) -> _Outcome:
        if self.stopped_by_request:
            return _Outcome(TrainingPhase.STOPPED, STOPPED_REASON, pack)
        return _Outcome(TrainingPhase.STOPPED, MAX_RUNTIME_REASON, pack)

    async def _terminate_hosts(self) -> None:
        grace = self.settings.stop_grace_seconds
        await asyncio.gather(*(host.terminate(grace) for host in self.hosts))

    async def _failure_reason(self, host: HostProcess, code: int) -> str:
        written = await asyncio.to_thread(_read_failure, self.workspace.failure_file(host.host))
        if written:
            return written
        return algorithm_error(host.last_stderr_line, code)

    async def _pack(self, outcome: _Outcome) -> _Outcome:
        self.uploading_at_ms = self.settings.clock_ms()
        try:
            uri = await asyncio.to_thread(
                upload_artifacts, self.settings.store, self.workspace, self.request
            )
        except (ObjectStoreError, OSError, tarfile.TarError) as err:
            _log.warning("training job %s: artifact upload failed: %s", self.request.name, err)
            if outcome.phase is TrainingPhase.COMPLETED:
                reason = upload_failure(err)
                return _Outcome(TrainingPhase.FAILED, reason[:FAILURE_REASON_LIMIT])
            return outcome
        self.model_artifacts = uri
        return outcome


def algorithm_error(line: str | None, code: int) -> str:
    """SageMaker's reason for a training that exited non-zero without a failure file."""
    text = f"AlgorithmError: {line or '(no output on stderr)'}, exit code: {code}"
    return text[:FAILURE_REASON_LIMIT]


def _read_failure(path: Path) -> str | None:
    """The first 1,024 characters of ``output/failure`` (trailing whitespace trimmed)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            text = handle.read(FAILURE_REASON_LIMIT)
    except (FileNotFoundError, IsADirectoryError):
        return None
    return text.rstrip() or None
