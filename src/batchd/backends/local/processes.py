"""One host's process tree: launched without a shell in its own session, logged, stopped whole.

Each host runs as the leader of a new session (``start_new_session=True``), so its process
group id equals its pid and every descendant that does not call ``setsid`` itself stays in
that group. Stopping sends SIGTERM to the whole group, waits the grace period, then sends
SIGKILL. When the leader exits on its own, whatever is left in its group is killed at once,
as a container's processes die with its PID 1: no orphans. (A descendant that starts its own
session escapes this; containers or cgroups would be needed to catch it.)

stdout and stderr are both piped through the event loop into the host's log (``stamped``),
which records when each line was written (CloudWatch events need a timestamp); the last stderr
line is also kept for the FailureReason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from batchd.backends.local.stamped import LineBuffer, StampedLog

__all__ = ["HostProcess", "SpawnError", "exit_code"]

_TAIL_BYTES = 4096
_STDERR_DRAIN_SECONDS = 2.0


class SpawnError(Exception):
    """The host's program could not be started (not found, not executable, bad argv)."""


def exit_code(returncode: int) -> int:
    """A container-style exit code: death by signal ``s`` is ``128 + s``."""
    return 128 - returncode if returncode < 0 else returncode


class HostProcess:
    """A running host; ``wait`` gives its exit code once it and its group are gone."""

    def __init__(
        self,
        host: str,
        process: asyncio.subprocess.Process,
        log: StampedLog,
        cleanup: Sequence[str],
        clock_ms: Callable[[], int],
    ) -> None:
        self.host = host
        self.pid = process.pid
        self._process = process
        self._log = log
        self._clock_ms = clock_ms
        self._cleanup = tuple(cleanup)
        self._tail = b""
        self._output = asyncio.gather(self._pump(process.stderr, True), self._pump(process.stdout))
        self._done: asyncio.Task[int] = asyncio.create_task(self._reap())

    @classmethod
    async def launch(
        cls,
        host: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        clock_ms: Callable[[], int],
        cleanup: Sequence[str] = (),
    ) -> HostProcess:
        """Start ``argv`` (no shell) with exactly ``env``; ``cleanup`` runs after it ends."""
        log = StampedLog(log_path)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except (OSError, ValueError) as err:
            log.close()
            raise SpawnError(f"cannot start {argv[0]!r} on {host}: {err}") from err
        return cls(host, process, log, cleanup, clock_ms)

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def finished(self) -> bool:
        return self._done.done()

    @property
    def last_stderr_line(self) -> str:
        lines = self._tail.decode("utf-8", "replace").splitlines()
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    async def wait(self) -> int:
        """The exit code (``128 + signal`` if killed), once the whole group is gone."""
        return await asyncio.shield(self._done)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the host's whole process group (no-op once it is gone)."""
        if self._done.done():
            return  # the group is gone and its id may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    async def terminate(self, grace_seconds: float) -> int:
        """SIGTERM the group, SIGKILL it after ``grace_seconds``; return the exit code."""
        if not self._done.done():
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._done), grace_seconds)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        return await self.wait()

    async def _reap(self) -> int:
        try:
            returncode = await self._process.wait()
        finally:
            self.signal(signal.SIGKILL)  # whatever the leader left behind in its group
        try:
            await asyncio.wait_for(asyncio.shield(self._output), _STDERR_DRAIN_SECONDS)
        except TimeoutError:
            self._output.cancel()  # a descendant in another session still holds the pipe
        self._log.close()
        if self._cleanup:
            await _run_quietly(self._cleanup)
        return exit_code(returncode)

    async def _pump(self, stream: asyncio.StreamReader | None, stderr: bool = False) -> None:
        assert stream is not None
        lines = LineBuffer()
        while True:
            chunk = await stream.read(65536)
            self._log.write_lines(lines.feed(chunk), self._clock_ms())
            if not chunk:
                return
            if stderr:
                self._tail = (self._tail + chunk)[-_TAIL_BYTES:]


async def _run_quietly(argv: Sequence[str]) -> None:
    with contextlib.suppress(OSError):
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()
