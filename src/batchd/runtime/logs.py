"""Training jobs' output, read from the backend that ran them (``LogReader``).

The current attempt names its backend; a past attempt does not (its record keeps only the
training job's ARN), so every backend is asked in turn, and the first with output answers. A
backend that never ran the job has none, so asking it costs a lookup, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from batchd.backends.base import Backend, LogEvent, TimedLogs

__all__ = ["BackendLogs"]


class BackendLogs:
    """The ``LogReader`` of the server: its backends' log streams."""

    def __init__(self, backends: Mapping[str, Backend]) -> None:
        self._backends = dict(backends)

    def _candidates(self, backend: str | None) -> list[Backend]:
        first = self._backends.get(backend) if backend is not None else None
        others = [each for each in self._backends.values() if each is not first]
        return others if first is None else [first, *others]

    async def log_hosts(self, training_job_name: str, backend: str | None) -> Sequence[str]:
        for candidate in self._candidates(backend):
            hosts = await candidate.log_hosts(training_job_name)
            if hosts:
                return hosts
        return ()

    async def read_log(
        self, training_job_name: str, backend: str | None, host: str, offset: int, limit: int
    ) -> bytes:
        # Empty is also the answer at the end of a stream; the other backends then have
        # nothing for this job either, so asking them changes nothing.
        for candidate in self._candidates(backend):
            body = await candidate.read_log(training_job_name, host, offset, limit)
            if body:
                return body
        return b""

    async def read_events(
        self, training_job_name: str, backend: str | None, host: str, start: int, limit: int
    ) -> tuple[Sequence[LogEvent], int]:
        """Events of one host's stream; a backend without times gives one event per line, each
        stamped 0 (the caller knows nothing better than the stream's creation time)."""
        for candidate in self._candidates(backend):
            if isinstance(candidate, TimedLogs):
                events, total = await candidate.read_events(training_job_name, host, start, limit)
            else:
                events, total = await _untimed(candidate, training_job_name, host, start, limit)
            if total:
                return events, total
        return (), 0


_UNTIMED_BYTES = 8 * 1024 * 1024


async def _untimed(
    backend: Backend, training_job_name: str, host: str, start: int, limit: int
) -> tuple[Sequence[LogEvent], int]:
    body = await backend.read_log(training_job_name, host, 0, _UNTIMED_BYTES)
    lines = body.decode("utf-8", "replace").splitlines()
    chosen = lines[max(0, start) : max(0, start + limit)]
    return [LogEvent(0, line) for line in chosen], len(lines)
