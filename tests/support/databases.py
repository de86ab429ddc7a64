"""Real databases for tests: a fresh SQLite file, or a fresh schema on local PostgreSQL.

PostgreSQL tests run wherever 127.0.0.1:5432 answers. In CI (``CI`` set) a missing server
fails the run instead of skipping, so a green CI always means both databases were tested.
Each test process works in a database of its own (created on the server, dropped at exit),
so concurrent test runs on one machine never reset each other's schema.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
from pathlib import Path

import pytest

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
_OWN_DB = f"batchd_test_{os.getpid()}"
PG_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{_OWN_DB}"
_created: list[str] = []


def postgres_available() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if postgres_available():
        return
    message = f"PostgreSQL is not listening on {PG_HOST}:{PG_PORT} (database {PG_DB!r})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must test PostgreSQL")
    pytest.skip(message)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=PG_DB)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _reset_schema() -> None:
    import asyncpg

    if not _created:
        await _admin(f"DROP DATABASE IF EXISTS {_OWN_DB}")
        await _admin(f"CREATE DATABASE {_OWN_DB}")
        _created.append(_OWN_DB)
        atexit.register(
            lambda: asyncio.run(_admin(f"DROP DATABASE IF EXISTS {_OWN_DB} WITH (FORCE)"))
        )
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=_OWN_DB)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


def fresh_database(kind: str, tmp_path: Path) -> str:
    """A URL to an empty database of ``kind`` (sqlite | postgres)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'batchd.db'}"
    require_postgres()
    asyncio.run(_reset_schema())
    return PG_URL
