"""Who schedules: one leader per database, fenced by an epoch.

On PostgreSQL the leader holds a session advisory lock on a connection of its own; if the
process dies the connection drops and the lock with it, so another replica takes over. On
SQLite (several worker processes of one server) it holds an exclusive ``flock`` on a file
beside the database, which the kernel releases when the process dies.

A lock alone does not stop a leader that lost it without noticing (a cut or stalled lock
connection) from writing until its next check. So each new leader raises the epoch in the
``leadership`` row, and every scheduling write checks, in its own transaction, that the epoch
is still the writer's (``check``): a deposed leader's write fails with ``Deposed`` instead of
landing, and on PostgreSQL the row lock orders it before or after the next leader's claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.storage.database import Database, PostgresDatabase, SqliteDatabase
from batchd.storage.dialects import WORK_CHANNEL
from batchd.storage.schema import leadership

__all__ = ["Deposed", "Lease", "check"]

log = logging.getLogger("batchd.lease")

# An arbitrary constant that names batchd's scheduler lock within the database.
_LOCK_KEY = 0x6261_7463_6864  # "batchd"


class Deposed(Exception):
    """Another replica became the leader: this one's scheduling write did not land."""

    def __init__(self, mine: int, current: int | None) -> None:
        super().__init__(
            f"another replica leads now (epoch {current}, this one's was {mine}); "
            "this replica stops scheduling"
        )
        self.mine = mine
        self.current = current


def check(conn: Connection, epoch: int) -> None:
    """Within a write transaction: raise ``Deposed`` unless ``epoch`` still leads. The row is
    share-locked, so a new leader's claim waits for this transaction to end."""
    stmt = select(leadership.c.epoch).where(leadership.c.id == 1).with_for_update(read=True)
    current = conn.execute(stmt).scalar_one_or_none()
    if current != epoch:
        raise Deposed(epoch, current)


def _claim(conn: Connection, holder: str, now_ms: int) -> tuple[int, int]:
    """Raise the epoch for a new leader: (epoch, since)."""
    row = conn.execute(
        select(leadership.c.epoch).where(leadership.c.id == 1).with_for_update()
    ).scalar_one_or_none()
    epoch = (row or 0) + 1
    values = {"epoch": epoch, "holder": holder, "since": now_ms}
    if row is None:
        conn.execute(insert(leadership).values(id=1, **values))
    else:
        conn.execute(update(leadership).where(leadership.c.id == 1).values(**values))
    return epoch, now_ms


class Lease:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None
        self._lock_file: Path | None = None
        if isinstance(db, SqliteDatabase):
            self._lock_file = Path(f"{db.path}.lease")
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        # The epoch this process leads in, and since when (epoch ms); None while following.
        self.epoch: int | None = None
        self.since: int | None = None
        # Called when another replica commits work for the leader (PostgreSQL NOTIFY).
        self.on_work: Callable[[], None] | None = None

    async def hold(self, now_ms: int) -> bool:
        """True while this process is the leader; tries to become it when it is not, and
        then raises the epoch (``now_ms`` is when it began to lead)."""
        had = self.epoch is not None
        held = await self._hold_lock()
        if held and not had:
            try:
                self.epoch, self.since = await self._db.write(
                    lambda conn: _claim(conn, self.holder, now_ms)
                )
            except Exception:
                await self.release()
                raise
        return held

    async def _hold_lock(self) -> bool:
        if self._lock_file is not None:
            return self._hold_file()
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))
                # Out of the transaction at once: PostgreSQL holds back notifications for a
                # session inside one (and an idle transaction holds its snapshot).
                await self._conn.commit()
                return True
            assert isinstance(self._db, PostgresDatabase)
            conn = await self._db.engine.connect()
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY})
            ).scalar_one()
            await conn.commit()
            if got:
                self._conn = conn
                await self._listen(conn)
                log.info("this replica is now the scheduling leader")
                return True
            await conn.close()
            return False
        except (OperationalError, DBAPIError):
            log.warning("lost the database connection that held the scheduler lease")
            await self.release()
            return False

    async def _listen(self, conn: AsyncConnection) -> None:
        """Hear other replicas' submits and requests on the lock's own connection."""
        raw = (await conn.get_raw_connection()).driver_connection
        if raw is not None:
            await raw.add_listener(WORK_CHANNEL, self._heard)

    def _heard(self, *_: object) -> None:
        if self.on_work is not None:
            self.on_work()

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
        self.epoch = self.since = None
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                # Not back to the pool: its session lock and listener would go with it.
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
