"""Sequential requests on one keep-alive connection, timed one by one (blocking sockets).

One request at a time means the time measured is the server's time plus a fixed client and
loopback cost; the same loop against the fixed-response server measures that cost (the floor).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from bench.benchlib.loadgen import response_head
from bench.benchlib.procs import HOST

__all__ = ["BlockingConnection", "time_requests"]


class BlockingConnection:
    def __init__(self, port: int) -> None:
        self._port = port
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((HOST, self._port), timeout=60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._buffer = sock, b""
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self._buffer += chunk

    def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request, read one response; reopen if the server asks to close."""
        sock = self._socket()
        sock.sendall(raw)
        while b"\r\n\r\n" not in self._buffer:
            self._fill(sock)
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status, declared, close = response_head(head)
        length = declared or 0
        self._buffer = rest
        while len(self._buffer) < length:
            self._fill(sock)
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        if close:
            self.close()
        return status, body

    def __enter__(self) -> BlockingConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def time_requests(
    port: int, requests: Sequence[bytes], *, warmup: int = 50, max_seconds: float = 120.0
) -> list[float]:
    """Milliseconds per request for ``requests`` in order (after ``warmup`` untimed ones).

    Raises on any non-2xx answer: a latency of an error is not a latency of the operation.
    """
    timings: list[float] = []
    deadline = time.monotonic() + max_seconds
    with BlockingConnection(port) as conn:
        for raw in list(requests[:warmup]):
            conn.send(raw)
        for raw in requests:
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            status, body = conn.send(raw)
            timings.append((time.perf_counter() - started) * 1000)
            if not 200 <= status < 300:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return timings
