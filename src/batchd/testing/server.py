"""A real batchd in a background thread: the app ``batchd serve`` runs (SQLite in a temporary
directory, the fake backend), on a virtual clock unless asked for the wall clock.

Everything that touches the runtime runs on the server's own event loop; the test's thread
hands it coroutines and waits for them.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from batchd.backends.fake import FakeBackend
from batchd.clock import SystemClock, VirtualClock
from batchd.runtime import virtual_time
from batchd.runtime.loop import Runtime
from batchd.settings import Settings
from batchd.storage.schema import leadership, metadata
from batchd.testing.scripting import Rules
from batchd.wiring import build_app

__all__ = ["BatchdServer", "shared_server", "stop_shared"]

T = TypeVar("T")

_START_TIMEOUT = 30.0
_CALL_TIMEOUT = 120.0


def _empty_tables(conn: Any) -> None:
    """Every row of every table but the leadership row: this server goes on leading."""
    for table in reversed(metadata.sorted_tables):
        if table is not leadership:
            conn.execute(table.delete())


class BatchdServer:
    """One batchd for a whole test session; ``reset`` empties it for the next test."""

    def __init__(self, *, realtime: bool = False, tick_seconds: float = 0.05) -> None:
        self.realtime = realtime
        self.clock: VirtualClock | None = None if realtime else VirtualClock(_wall_ms())
        self.endpoint_url = ""
        self.region = "us-east-1"
        self._tick_seconds = tick_seconds
        self._dir: Path | None = None
        self._runtime: Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.rules = Rules(self._job_name)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BatchdServer:
        self._dir = Path(tempfile.mkdtemp(prefix="batchd-test-", dir=_scratch()))
        settings = Settings(
            data_dir=self._dir,
            backend="fake",
            region=self.region,
            tick_seconds=self._tick_seconds,
            hosts_file=None,
        )
        app = build_app(settings, clock=self.clock, opened=self._opened)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve()), name="batchd-test-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the batchd test server did not start (see the log above)")
            time.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self

    def _opened(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._loop = asyncio.get_running_loop()
        self.fake_backend.script = self.rules

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        self._server = self._thread = self._runtime = self._loop = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the batchd test server is not running")
        return self._runtime

    @property
    def fake_backend(self) -> FakeBackend:
        backend = self.runtime.core.backends["fake"]
        assert isinstance(backend, FakeBackend)
        return backend

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's event loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the batchd test server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    # -- what a test does --------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.clock.now_ms() if self.clock is not None else _wall_ms()

    def advance(self, seconds: float = 0.0) -> int:
        """Move time ``seconds`` on and run everything due up to then; the cycles run. On the
        wall clock (``realtime``) this sleeps instead."""
        if seconds < 0:
            raise ValueError(f"time does not go back: advance({seconds})")
        if self.clock is None:
            time.sleep(seconds)
            return 0
        until = self.clock.now_ms() + round(seconds * 1000)
        return self.call(virtual_time.advance(self.runtime, self.clock, until))

    def step(self) -> bool:
        """One scheduling cycle at the current time (every status on the way can be seen);
        whether it changed anything."""
        return self.call(self.runtime.tick(self.now_ms()))

    def reset(self) -> None:
        """No resources, no jobs, no scripted outcomes; the virtual clock back at wall time."""
        self.rules.clear()
        self.call(self._reset())

    async def _reset(self) -> None:
        runtime = self.runtime
        # The runtime's own lock: on the wall clock its loop may be mid-cycle.
        async with runtime._lock:
            store = runtime.core.store
            await store.db.write(_empty_tables)
            store.forget_cached()
            self.fake_backend.forget()
            if self.clock is not None:
                self.clock.now = _wall_ms()  # nothing remembers the old time any more
            await runtime.core.rebuild()

    def _job_name(self, job_id: str) -> str | None:
        job = self._runtime.core.jobs.get(job_id) if self._runtime is not None else None
        return job.job_name if job is not None else None


def _scratch() -> str | None:
    """Where the database goes: memory-backed when the system has it (/dev/shm), since a
    test's data need not survive a power cut and each commit's fsync cost milliseconds."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _wall_ms() -> int:
    return SystemClock().now_ms()


_shared: dict[bool, BatchdServer] = {}
_shared_lock = threading.Lock()


def shared_server(realtime: bool = False) -> BatchdServer:
    """The process's server of that kind, started on first use and kept for the session."""
    with _shared_lock:
        server = _shared.get(realtime)
        if server is None or not server.running:
            server = _shared[realtime] = BatchdServer(realtime=realtime).start()
        return server


def stop_shared() -> None:
    with _shared_lock:
        servers = list(_shared.values())
        _shared.clear()
    for server in servers:
        server.stop()


# Stop before the interpreter refuses new threads' work (the store closes on an executor):
# threading's own exit hooks run before concurrent.futures shuts down; atexit runs after.
getattr(threading, "_register_atexit", atexit.register)(stop_shared)
