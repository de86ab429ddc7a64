"""Real server processes on free loopback ports, stopped (whole process group) on exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_PG_ADMIN",
    "Server",
    "batchd_server",
    "exit_on_sigterm",
    "free_port",
    "moto_server",
    "postgres_available",
    "postgres_database",
    "proc_memory",
    "trivial_server",
    "workspace",
]

HOST = "127.0.0.1"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
_HERE = Path(__file__).resolve().parent


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the servers we started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not listen within {timeout:.0f}s:\n{server.log_tail()}")


@contextlib.contextmanager
def _server(
    name: str, argv: Sequence[str], port: int, workdir: Path, timeout: float, env: dict[str, str]
) -> Iterator[Server]:
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=workdir,
            env={**os.environ, **env},
        )
    server = Server(name, port, process, log)
    try:
        _wait_listening(server, timeout)
        yield server
    finally:
        _stop(process)


def batchd_server(
    workdir: Path,
    data_dir: Path,
    db_url: str | None = None,
    *,
    tick_seconds: float = 1.0,
    timeout: float = 120.0,
    backend: str = "fake",
    workers: int = 1,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> contextlib.AbstractContextManager[Server]:
    """``batchd serve`` (the fake backend unless told otherwise), on a free port; ``extra``
    arguments after the others, ``env`` over this process's environment."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "batchd.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--backend",
        backend,
        "--log-level",
        "warning",
        "--tick-seconds",
        str(tick_seconds),
    ]
    if db_url is not None:
        argv += ["--db", db_url]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return _server("batchd", argv + list(extra), port, workdir, timeout, env or {})


@contextlib.contextmanager
def moto_server(workdir: Path, timeout: float = 60.0) -> Iterator[Server]:
    """moto's server with Batch's docker use switched off through ``/moto-api/config``."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    with _server("moto", argv, port, workdir, timeout, {}) as server:
        body = json.dumps({"batch": {"use_docker": False}}).encode()
        request = urllib.request.Request(
            f"{server.url}/moto-api/config",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            config = json.loads(response.read())
        if config.get("batch", {}).get("use_docker") is not False:
            raise RuntimeError(f"moto did not accept use_docker=false: {config}")
        yield server


def trivial_server(
    workdir: Path, responses: dict[str, bytes], timeout: float = 30.0
) -> contextlib.AbstractContextManager[Server]:
    """A fixed-response HTTP server (stdlib asyncio): the client's own ceiling."""
    port = free_port()
    spec = workdir / f"trivial-{port}.json"
    spec.write_text(json.dumps({path: body.decode() for path, body in responses.items()}))
    argv = [sys.executable, str(_HERE / "trivial.py"), str(port), str(spec)]
    return _server("trivial", argv, port, workdir, timeout, {})


def postgres_available(admin_url: str) -> str | None:
    """None when PostgreSQL answers at ``admin_url``, else why not."""
    import asyncpg

    async def ping() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except Exception as err:  # any failure means: skip PostgreSQL, and say why
        return f"{type(err).__name__}: {err}"
    return None


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database next to ``admin_url``'s, dropped at the end; yields its URL."""
    import asyncpg

    name = f"batchd_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon... in bytes, from ``/proc/<pid>/status``."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
            found[key] = int(parts[0]) * 1024
    return found


@contextlib.contextmanager
def workspace(prefix: str = "batchd-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
