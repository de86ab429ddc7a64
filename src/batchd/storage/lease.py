"""Who schedules: one leader per database.

On PostgreSQL the leader holds a session advisory lock on a connection of its own; if the
process dies the connection drops and the lock with it, so another replica takes over. On
SQLite (several worker processes of one server) it holds an exclusive ``flock`` on a file
beside the database, which the kernel releases when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.storage.database import Database, PostgresDatabase, SqliteDatabase

__all__ = ["Lease"]

log = logging.getLogger("batchd.lease")

# An arbitrary constant that names batchd's scheduler lock within the database.
_LOCK_KEY = 0x6261_7463_6864  # "batchd"


class Lease:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None
        self._lock_file: Path | None = None
        if isinstance(db, SqliteDatabase):
            self._lock_file = Path(f"{db.path}.lease")

    async def hold(self) -> bool:
        """True while this process is the leader; tries to become it when it is not."""
        if self._lock_file is not None:
            return self._hold_file()
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))
                return True
            assert isinstance(self._db, PostgresDatabase)
            conn = await self._db.engine.connect()
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY})
            ).scalar_one()
            await conn.commit()
            if got:
                self._conn = conn
                log.info("this replica is now the scheduling leader")
                return True
            await conn.close()
            return False
        except (OperationalError, DBAPIError):
            log.warning("lost the database connection that held the scheduler lease")
            await self.release()
            return False

    def _hold_file(self) -> bool:
        if self._fd is not None:
            return True
        assert self._lock_file is not None
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("this process is now the scheduling leader")
        return True

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
