"""Closed-loop HTTP/1.1 load over raw asyncio streams: pre-signed requests, keep-alive.

Each of ``connections`` workers sends one request, reads the whole response, and sends the
next, until the duration is over or the request budget is spent. A connection the server
closes (moto answers ``Connection: close``) is reopened, and that cost counts against the server.
Only responses that complete inside the measured window (after the warm-up) count toward the
rate; every 2xx response counts toward ``acknowledged``, which the caller checks against the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.benchlib.procs import HOST

__all__ = ["HttpConnection", "LoadResult", "response_head", "run_load"]


@dataclass
class LoadResult:
    duration_s: float
    window_ok: int = 0
    acknowledged: int = 0
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    reconnects: int = 0

    @property
    def rate(self) -> float:
        return self.window_ok / self.duration_s if self.duration_s > 0 else 0.0


def response_head(head: bytes) -> tuple[int, int | None, bool]:
    """(status, Content-Length or None, whether the server closes) of a response head."""
    status = int(head[9:12])
    length: int | None = None
    close = head.startswith(b"HTTP/1.0")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"connection":
            close = value.strip().lower() == b"close"
        elif key == b"transfer-encoding":
            raise RuntimeError("chunked responses are not expected from these servers")
    return status, length, close


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that reopens itself when the server closes it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.opened = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self._port)
            self.opened += 1
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one request and read its response: (status, body)."""
        reader, writer = await self._open()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status, length, close = response_head(head)
        if length is None:
            body = await reader.read()
            close = True
        else:
            body = await reader.readexactly(length)
        if close:
            await self.close()
        return status, body


async def _worker(
    port: int,
    requests: Sequence[bytes],
    offset: int,
    stride: int,
    clock: tuple[float, float, float],
    budget: list[int],
    result: LoadResult,
    token: bytes | None,
) -> None:
    start, window_start, end = clock
    del start
    conn = HttpConnection(port)
    k = offset
    try:
        while budget[0] > 0 and time.perf_counter() < end:
            budget[0] -= 1
            raw = requests[k % len(requests)]
            if token is not None:  # a new client token: a new job, as a real client sends
                raw = raw.replace(token, str(uuid.uuid4()).encode(), 1)
            k += stride
            sent = time.perf_counter()
            result.sent += 1
            try:
                status, _ = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
                result.errors[type(err).__name__] += 1
                await conn.close()
                if sum(result.errors.values()) > 1000:
                    return
                await asyncio.sleep(0.01)
                continue
            done = time.perf_counter()
            result.statuses[status] += 1
            if 200 <= status < 300:
                result.acknowledged += 1
                if window_start <= done <= end:
                    result.window_ok += 1
                    result.latencies_ms.append((done - sent) * 1000)
    finally:
        result.reconnects += max(0, conn.opened - 1)
        await conn.close()


async def _run(
    port: int,
    requests: Sequence[bytes],
    connections: int,
    warmup: float,
    duration: float,
    max_requests: int,
    token: bytes | None,
) -> LoadResult:
    now = time.perf_counter()
    clock = (now, now + warmup, now + warmup + duration)
    result = LoadResult(duration_s=duration)
    budget = [max_requests]
    workers = [
        _worker(port, requests, i, connections, clock, budget, result, token)
        for i in range(connections)
    ]
    # Every worker stops sending at the deadline; allow the requests in flight to finish.
    await asyncio.wait_for(asyncio.gather(*workers), timeout=warmup + duration + 120)
    return result


def run_load(
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int,
    warmup: float,
    duration: float,
    max_requests: int = 10_000_000,
    token: str | None = None,
) -> LoadResult:
    """Drive ``requests`` (round robin) at 127.0.0.1:``port`` as fast as it answers.

    With ``token``, that text (a UUID-shaped placeholder) is replaced in every request by a
    fresh UUID, so each replayed submit carries its own client token, as boto3 sends.
    """
    marker = token.encode() if token is not None else None
    return asyncio.run(_run(port, requests, connections, warmup, duration, max_requests, marker))
