"""``batchd serve --workers N``: N server processes on one port, supervised by the parent.

Each worker binds a listening socket of its own with ``SO_REUSEPORT``, so the kernel spreads
new connections evenly over the workers. With one shared socket, whichever process was idle
accepted most of a client's connection pool and the others sat idle: two workers then served
fewer requests than one.

The parent migrates the database once, starts the workers, passes SIGTERM/SIGINT on to them,
and restarts a worker that dies on its own. The workers elect the scheduler among themselves
through the database lease (see ``storage/lease.py``).

A worker reads its settings, as JSON, from its stdin, which the parent writes and closes. They
hold secrets (access keys, a database URL with its password): in an environment variable they
would be readable in ``/proc/<pid>/environ`` for the worker's whole life, and inherited by
every process it starts. ``BATCHD_ACCESS_KEYS`` is left out of the workers' environment too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from batchd.settings import Settings

__all__ = ["run_workers", "serve_worker"]

log = logging.getLogger("batchd.workers")

_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SECRET_ENVIRONMENT = ("BATCHD_ACCESS_KEYS",)  # the workers get these from their settings
# A worker that cannot listen exits 2, and uvicorn exits 3 when the app fails to start
# (say, the database is unreachable): stop then, as one process would, instead of retrying.
_FAILED_TO_START = (2, 3)
_RESTART_PAUSE_SECONDS = 1.0


def bound_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A socket bound but not yet listening: uvicorn listens once the app has started, so
    the kernel hands a process no connection while it is still starting (rebuilding the
    scheduler's state can take a while). ``shared``: one of several workers' sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_or_explain(settings: Settings, *, shared: bool) -> socket.socket | None:
    try:
        return bound_socket(settings.host, settings.port, shared=shared)
    except OSError as err:
        print(f"batchd: cannot listen on {settings.host}:{settings.port}: {err}", file=sys.stderr)
        return None


def serve_alone(settings: Settings, log_level: str) -> int:
    """One process: 2 when the port is taken (found before the database is opened), 3 when
    the app fails to start."""
    sock = _bind_or_explain(settings, shared=False)
    return 2 if sock is None else serve(settings, log_level, [sock])


def serve(settings: Settings, log_level: str, sockets: list[socket.socket]) -> int:
    """Run the app under uvicorn until stopped; 3 when it failed to start, as uvicorn exits."""
    import uvicorn

    from batchd.wiring import build_app

    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # batchd reads no client address, so uvicorn's X-Forwarded-For middleware would only
        # add a layer to every request.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return 0 if server.started else 3


def serve_worker(log_level: str) -> int:
    """One worker: the app from the settings its parent writes to its stdin."""
    settings = Settings.from_json(sys.stdin.buffer.read())
    sock = _bind_or_explain(settings, shared=True)
    return 2 if sock is None else serve(settings, log_level, [sock])


class _Supervisor:
    def __init__(self, settings: Settings, count: int, log_level: str) -> None:
        self.settings = settings.to_json().encode()
        self.count = count
        self.argv = [sys.executable, "-m", "batchd.cli", "_worker", "--log-level", log_level]
        self.env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENVIRONMENT}
        self.env[_METRICS_ENV] = str(_metrics_dir(settings))
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start_one(self) -> None:
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, env=self.env)
        self.workers[proc.pid] = proc
        assert proc.stdin is not None  # stdin=PIPE
        try:
            with proc.stdin:
                proc.stdin.write(self.settings)
        except BrokenPipeError:  # it died before reading them: run() sees its exit code
            pass

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        del signum

    def run(self) -> int:
        for _ in range(self.count):
            self.start_one()
        while self.workers:
            time.sleep(0.2)
            for pid, proc in list(self.workers.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.workers[pid]
                if self.stopping:
                    continue
                if code in _FAILED_TO_START:
                    log.error("worker %d failed to start (exit %s); stopping", pid, code)
                    self.stop(signal.SIGTERM, None)
                    self._wait()
                    return code  # as one process that failed so would have exited
                log.error("worker %d exited (%s); starting another", pid, code)
                time.sleep(_RESTART_PAUSE_SECONDS)
                self.start_one()
        return 0

    def _wait(self) -> None:
        for proc in self.workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.workers.clear()


def _metrics_dir(settings: Settings) -> Path:
    """Where the workers' counters live (prometheus_client's multiprocess mode), emptied
    at start: a scrape of any worker sums them all, also those of workers that died."""
    path = settings.data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_workers(settings: Settings, count: int, log_level: str) -> int:
    """Start ``count`` workers and supervise them until SIGTERM or SIGINT."""
    supervisor = _Supervisor(settings, count, log_level)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    log.info("starting %d workers on http://%s:%d", count, settings.host, settings.port)
    return supervisor.run()
