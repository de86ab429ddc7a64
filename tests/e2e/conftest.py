"""A module-scoped server, for tests that only read or that create uniquely named resources.

Each module gets its own database: a SQLite file, or a PostgreSQL database of its own (not
the ``test`` database that the function-scoped ``db_url`` fixture resets), so a shared
server and per-test servers of the same module never see each other's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import PG_DB, PG_HOST, PG_PORT, require_postgres
from tests.support.server import RunningServer, serve, settings_for


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=PG_DB)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared') / 'batchd.db'}"
        return
    require_postgres()
    name = f"batchd_e2e_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def shared_server(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(settings_for(module_db_url, tmp_path_factory.mktemp("data"))) as running:
        yield running


@pytest.fixture(scope="module")
def shared_batch(shared_server: RunningServer) -> Any:
    return shared_server.client()
