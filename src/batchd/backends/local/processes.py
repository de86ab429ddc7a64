"""One host's process tree: launched without a shell in its own session, logged, stopped whole.

Each host runs as the leader of a new session (``start_new_session=True``), so its process
group id equals its pid and every descendant that does not call ``setsid`` itself stays in
that group. Stopping sends SIGTERM to the whole group, waits the grace period, then sends
SIGKILL. When the leader exits on its own, whatever is left in its group is killed at once,
as a container's processes die with its PID 1: no orphans. (A descendant that starts its own
session escapes this; containers or cgroups would be needed to catch it.)

stdout goes straight to the host's log file; stderr is piped through the event loop into the
same file (opened for append) so the last stderr line is known for the FailureReason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

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
        log_fd: int,
        cleanup: Sequence[str],
    ) -> None:
        self.host = host
        self.pid = process.pid
        self._process = process
        self._log_fd = log_fd
        self._cleanup = tuple(cleanup)
        self._tail = b""
        self._stderr = asyncio.create_task(self._pump_stderr())
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
        cleanup: Sequence[str] = (),
    ) -> HostProcess:
        """Start ``argv`` (no shell) with exactly ``env``; ``cleanup`` runs after it ends."""
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except (OSError, ValueError) as err:
            os.close(log_fd)
            raise SpawnError(f"cannot start {argv[0]!r} on {host}: {err}") from err
        return cls(host, process, log_fd, cleanup)

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
            await asyncio.wait_for(asyncio.shield(self._stderr), _STDERR_DRAIN_SECONDS)
        except TimeoutError:
            self._stderr.cancel()  # a descendant in another session still holds the pipe
        os.close(self._log_fd)
        if self._cleanup:
            await _run_quietly(self._cleanup)
        return exit_code(returncode)

    async def _pump_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            os.write(self._log_fd, chunk)
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
