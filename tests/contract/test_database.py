"""Where SQL runs: transactions, readers beside the writer, and recovery from lost connections."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from batchd.clock import RandomIds
from batchd.storage.database import Database, SqliteDatabase, open_database
from batchd.storage.schema import resources
from batchd.storage.store import Store
from tests.support.databases import fresh_database
from tests.support.waiting import wait_until_async


def _run(db_url: str, scenario: Any) -> Any:
    async def main() -> Any:
        await (await Store.open(db_url)).close()  # the schema, as the server makes it
        db = open_database(db_url)
        try:
            return await scenario(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _resource(name: str) -> dict[str, str]:
    return {"kind": "job-queue", "name": name, "doc": "{}"}


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(resources)).scalar_one())


def test_a_unit_that_raises_writes_nothing(db_url: str) -> None:
    async def scenario(db: Database) -> tuple[int, int]:
        def fails(conn: Connection) -> None:
            conn.execute(resources.insert(), [_resource("a"), _resource("b")])
            raise RuntimeError("half way")

        with pytest.raises(RuntimeError, match="half way"):
            await db.write(fails)
        before = await db.read(_count)
        await db.write(lambda conn: conn.execute(resources.insert(), [_resource("c")]))
        return before, await db.read(_count)

    assert _run(db_url, scenario) == (0, 1)


def test_many_concurrent_units_each_commit_once(db_url: str) -> None:
    async def scenario(db: Database) -> int:
        def insert(name: str) -> Callable[[Connection], Any]:
            return lambda conn: conn.execute(resources.insert(), [_resource(name)])

        await asyncio.gather(*(db.write(insert(f"r{i}")) for i in range(200)))
        return await db.read(_count)

    assert _run(db_url, scenario) == 200


def test_sqlite_readers_do_not_wait_for_an_open_write(tmp_path: Path) -> None:
    """A write transaction held open (on the writer thread) does not stop reads."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    written, release = threading.Event(), threading.Event()

    async def scenario(db: Database) -> tuple[int, int]:
        assert isinstance(db, SqliteDatabase)

        def slow_write(conn: Connection) -> None:
            conn.execute(resources.insert(), [_resource("pending")])
            written.set()
            release.wait(timeout=30)

        writing = asyncio.ensure_future(db.write(slow_write))
        await wait_until_async(written.is_set)  # the write transaction is open
        during = await asyncio.wait_for(db.read(_count), timeout=5)  # sees the last commit
        release.set()
        await writing
        return during, await db.read(_count)

    assert _run(url, scenario) == (0, 1)


def _insert(name: str, conn: Connection) -> None:
    conn.execute(resources.insert(), [_resource(name)])


def test_a_scratch_database_undoes_only_the_unit_that_raises(tmp_path: Path) -> None:
    """Units of a scratch database share one open transaction: a failing unit is undone
    alone, reads see every unit before it, and the file holds them all once closed."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"

    async def scenario() -> tuple[int, int, int]:
        store = await Store.open(url, scratch=True)
        db = store.db
        await db.write(lambda conn: conn.execute(resources.insert(), [_resource("a")]))

        def fails(conn: Connection) -> None:
            conn.execute(resources.insert(), [_resource("b")])
            raise RuntimeError("half way")

        with pytest.raises(RuntimeError, match="half way"):
            await db.write(fails)
        after_failure = await db.read(_count)
        for index in range(1200):  # past a commit of the open transaction
            await db.write(partial(_insert, f"n{index}"))
        during = await db.read_by_key(_count)
        await store.close()
        reopened = open_database(url)
        try:
            return after_failure, during, await reopened.read(_count)
        finally:
            await reopened.close()

    assert asyncio.run(scenario()) == (1, 1201, 1201)


@pytest.mark.postgres
def test_postgres_reads_survive_the_server_dropping_their_connections(tmp_path: Path) -> None:
    db_url = fresh_database("postgres", tmp_path)

    async def scenario(db: Database) -> tuple[int, int]:
        first = await db.read(_count)
        await asyncio.gather(*(db.read(_count) for _ in range(8)))  # fill the read pool
        # Another session ends every pooled connection of ours, as a server restart would.
        await db.write(
            lambda conn: conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        )
        again = await asyncio.gather(*(db.read(_count) for _ in range(8)))
        return first, max(again)

    assert _run(db_url, scenario) == (0, 0)


def test_random_ids_are_distinct_version_4_uuids() -> None:
    ids = RandomIds()
    made = [ids.job_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    for value in made[::97] + made[-3:]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and str(parsed) == value
    assert len(ids.attempt_id()) == 32
