"""Who schedules: one leader per database.

On PostgreSQL the leader holds a session advisory lock on a connection of its own; if the
process dies the connection drops and the lock with it, so another replica takes over. An
SQLite database belongs to one process, which always leads.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Lease"]

log = logging.getLogger("batchd.lease")

# An arbitrary constant that names batchd's scheduler lock within the database.
_LOCK_KEY = 0x6261_7463_6864  # "batchd"


class Lease:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self.exclusive_by_nature = engine.dialect.name == "sqlite"

    async def hold(self) -> bool:
        """True while this process is the leader; tries to become it when it is not."""
        if self.exclusive_by_nature:
            return True
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))
                return True
            conn = await self._engine.connect()
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

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
