"""Where SQL runs: a unit of work is a plain function over a SQLAlchemy ``Connection``.

The Store writes each unit once; this module decides where it runs, so a unit costs one hop
off the event loop whatever it does inside.

- SQLite runs on the standard library driver, on threads of our own. One writer thread holds
  one connection: SQLite has a single writer, so queueing units there replaces lock waits, and
  each write transaction starts with ``BEGIN IMMEDIATE`` so a read-then-write unit is atomic
  across processes too. Reader threads hold their own connections (WAL readers never wait for
  the writer) and read outside any transaction. The driver drops the GIL while SQLite works,
  so its work overlaps the event loop's.
- PostgreSQL runs on asyncpg through SQLAlchemy's asyncio bridge. Reads use an autocommit
  engine: a point read is one round trip, with no BEGIN or ROLLBACK around it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from batchd.errors import StartupError

__all__ = ["Database", "DatabaseUnavailable", "open_database", "unavailable"]

T = TypeVar("T")
Work = Callable[[Connection], T]

_SQLITE_READERS = 2
# A scratch database commits after this many units: each unit is a savepoint of one open
# transaction, and a commit lets SQLite checkpoint its log.
_SCRATCH_UNITS_PER_COMMIT = 1000
_SCRATCH_CACHE_KIB = -32768  # SQLite's page cache: 32 MiB (negative: in KiB)


class DatabaseUnavailable(StartupError):
    """The database could not be reached or opened: the operator's to fix, not a bug."""


# What a database that is down, missing or refusing us raises, under SQLAlchemy's wrapping.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, unknown host, timed out, no such directory, no permission
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.InvalidAuthorizationSpecificationError,  # no such role, or pg_hba refuses
    asyncpg.InvalidPasswordError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.TooManyConnectionsError,
)


def unavailable(url: str, err: BaseException) -> DatabaseUnavailable | None:
    """``err`` as a one-line DatabaseUnavailable if it says the database cannot be reached;
    None for anything else (a bug keeps its traceback)."""
    seen: BaseException | None = err
    while seen is not None:
        cause = seen.orig if isinstance(seen, DBAPIError) else None
        if isinstance(seen, _UNAVAILABLE) or (
            # Other OperationalErrors (a locked or damaged database) are not about reaching it.
            isinstance(seen, sqlite3.OperationalError) and "unable to open" in str(seen)
        ):
            break
        seen = cause or seen.__cause__ or seen.__context__
    if seen is None:
        return None
    shown = _shown(url)
    if url.startswith("sqlite"):
        hint = "Check --db (or --data-dir) and that its directory exists and is writable."
    else:
        hint = "Check --db, and that the database server is running and accepts this user."
    return DatabaseUnavailable(
        f"cannot open the database {shown}: {type(seen).__name__}: {seen}. {hint}"
    )


class Database:
    """Runs units of work without blocking the event loop."""

    dialect: str
    # The engine whose events fire for writes (tests count commits on it).
    write_engine: Engine
    # The URL it was opened with, password hidden: safe to show.
    shown_url: str = ""
    # A scratch database (open_database): no other process, so no other replica, uses it.
    scratch: bool = False

    async def read(self, work: Work[T]) -> T:
        raise NotImplementedError

    async def write(self, work: Work[T]) -> T:
        """``work`` in one transaction: committed if it returns, rolled back if it raises."""
        raise NotImplementedError

    async def read_by_key(self, work: Work[T]) -> T:
        """A read of rows by primary key: quick enough to run where it is called."""
        return await self.read(work)

    async def close(self) -> None:
        raise NotImplementedError


def open_database(url: str, *, scratch: bool = False) -> Database:
    """A Database for the URLs people write: ``sqlite:///path`` or ``postgresql://...``.

    ``scratch``: a SQLite file that this process alone opens and throws away afterwards (the
    simulator's): commits skip fsync and units run on the caller's thread."""
    db = _open(url, scratch)
    db.shown_url = _shown(url)
    return db


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _open(url: str, scratch: bool) -> Database:
    for prefix in ("sqlite:///", "sqlite+pysqlite:///", "sqlite+aiosqlite:///"):
        if url.startswith(prefix):
            return SqliteDatabase(Path(url[len(prefix) :]), scratch=scratch)
    if scratch:
        raise ValueError(f"a scratch database is a SQLite file, not {_shown(url)}")
    for prefix in (
        "postgresql://",
        "postgres://",
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return PostgresDatabase("postgresql+asyncpg://" + url[len(prefix) :])
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, *, scratch: bool = False) -> None:
        self.path = path
        # A scratch database has one user, who waits for each unit anyway: the hop to a
        # thread and back would cost more than most units, and nothing else runs meanwhile.
        self.scratch = scratch
        self.write_engine = _sqlite_engine(path, "BEGIN IMMEDIATE", scratch)
        self._read_engine = _sqlite_engine(path, None, scratch)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="batchd-sqlite-writer")
        self._readers = ThreadPoolExecutor(
            _SQLITE_READERS, thread_name_prefix="batchd-sqlite-reader"
        )
        self._local = threading.local()
        self._write_lock = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._opened: list[Connection] = []
        self._opened_lock = threading.Lock()
        self._held: Connection | None = None  # a scratch database's one connection
        self._uncommitted = 0

    def _connection(self, engine: Engine) -> Connection:
        """This thread's connection to ``engine``, opened once and kept."""
        held: dict[int, Connection] = self._local.__dict__.setdefault("held", {})
        conn = held.get(id(engine))
        if conn is None or conn.closed:
            conn = held[id(engine)] = engine.connect()
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def _read_here(self, work: Work[T]) -> T:
        conn = self._connection(self._read_engine)
        try:
            return work(conn)
        finally:
            conn.rollback()  # ends SQLAlchemy's logical transaction; the driver had none

    def _write_here(self, work: Work[T]) -> T:
        conn = self._connection(self.write_engine)
        # Writers of several processes (serve --workers N) queue on a file lock: SQLite's own
        # busy handler sleeps 1 to 100 ms between tries, and under a steady stream of
        # commits from one process the other one starved.
        fcntl.flock(self._write_lock, fcntl.LOCK_EX)
        try:
            with conn.begin():
                return work(conn)
        finally:
            fcntl.flock(self._write_lock, fcntl.LOCK_UN)

    def _scratch_unit(self, work: Work[T], *, writes: bool) -> T:
        """``work`` on the scratch database's one connection, inside the transaction it keeps
        open: a unit that writes is a savepoint, undone alone if it raises. Committing only
        every so many units spares a BEGIN and a COMMIT per unit, a third of a runtime cycle's
        writing; no one else reads the file meanwhile."""
        conn = self._held
        if conn is None:
            conn = self._held = self.write_engine.connect()
            with self._opened_lock:
                self._opened.append(conn)
        if not conn.in_transaction():
            conn.begin()
        if not writes:
            return work(conn)
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("SAVEPOINT unit")
        try:
            result = work(conn)
        except BaseException:
            raw.execute("ROLLBACK TO unit")
            raw.execute("RELEASE unit")
            raise
        raw.execute("RELEASE unit")
        self._uncommitted += 1
        if self._uncommitted >= _SCRATCH_UNITS_PER_COMMIT:
            self._uncommitted = 0
            conn.commit()
        return result

    async def read(self, work: Work[T]) -> T:
        if self.scratch:
            return self._scratch_unit(work, writes=False)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_here, work)

    async def read_by_key(self, work: Work[T]) -> T:
        # On the event loop's own thread: a key lookup takes SQLite a few microseconds, the
        # hop to a reader thread and back cost more than that, and a WAL reader never waits.
        if self.scratch:
            return self._scratch_unit(work, writes=False)
        return self._read_here(work)

    async def write(self, work: Work[T]) -> T:
        if self.scratch:
            return self._scratch_unit(work, writes=True)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._write_here, work)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        held, self._held = self._held, None
        if held is not None and held.in_transaction():
            held.commit()
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self.write_engine.dispose()
        self._read_engine.dispose()
        os.close(self._write_lock)


def _sqlite_engine(path: Path, begin: str | None, scratch: bool) -> Engine:
    # NullPool: every thread keeps its one connection for life, so there is nothing to pool;
    # check_same_thread is off only so that close() can close them from another thread.
    engine = create_sync_engine(
        f"sqlite:///{path}",
        poolclass=NullPool,
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off: it would BEGIN only before DML, so a
        # read-then-write unit would not be atomic. Transactions are begun explicitly below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if scratch:
            # One connection, and nobody needs the file after a crash: pages are written
            # once, at commit, with no log to copy them from, and hot ones stay cached.
            cursor.execute("PRAGMA journal_mode=MEMORY")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute(f"PRAGMA cache_size={_SCRATCH_CACHE_KIB}")
        else:
            # WAL lets readers run beside the writer; FULL fsyncs every commit so an
            # acknowledged job survives power loss, and group commit keeps that affordable.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    if begin is not None:
        statement = begin

        def on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(statement)

        event.listen(engine, "begin", on_begin)
    return engine


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=16, max_overflow=0, pool_timeout=60, pool_pre_ping=True
        )
        # No pre-ping here: it would double a point read's round trips. A connection found
        # dead (the server restarted) is dropped and the read retried once instead.
        self._read_engine: AsyncEngine = create_async_engine(
            url, pool_size=16, max_overflow=0, pool_timeout=60, isolation_level="AUTOCOMMIT"
        )
        self.write_engine = self.engine.sync_engine

    async def read(self, work: Work[T]) -> T:
        try:
            async with self._read_engine.connect() as conn:
                return await conn.run_sync(work)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
        async with self._read_engine.connect() as conn:
            return await conn.run_sync(work)

    async def write(self, work: Work[T]) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    async def close(self) -> None:
        await self.engine.dispose()
        await self._read_engine.dispose()
