"""One line that says what the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

__all__ = ["describe_machine"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB RAM"
    except OSError:
        pass
    return "? GB RAM"


def _postgres_version(pg_url: str | None) -> str:
    if pg_url is None:
        return "PostgreSQL not used"
    try:
        out = subprocess.run(
            ["psql", pg_url, "-At", "-c", "SHOW server_version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return f"PostgreSQL {out.stdout.strip().split()[0]}"
    except (OSError, subprocess.SubprocessError, IndexError):
        return _postgres_version_asyncpg(pg_url)


def _postgres_version_asyncpg(pg_url: str) -> str:
    import asyncio

    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(pg_url, timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version")).split()[0]
        finally:
            await conn.close()

    try:
        return f"PostgreSQL {asyncio.run(ask())}"
    except Exception:  # the line is informative only
        return "PostgreSQL ?"


def describe_machine(pg_url: str | None = None) -> str:
    """Cores, CPU model, RAM, Python, SQLite and PostgreSQL versions."""
    return (
        f"machine: {os.cpu_count()} cores, {_cpu_model()}, {_memory_gb()}, "
        f"{platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"{_postgres_version(pg_url)}"
    )
