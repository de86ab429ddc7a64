"""What follower replicas ask of the scheduling leader, through the database."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Row

from batchd import jsontext
from batchd.storage.database import Database
from batchd.storage.schema import job_requests

__all__ = ["Mail", "MailKind", "Mailbox"]


class MailKind(enum.StrEnum):
    RELOAD = "reload"  # the configuration changed: plan from the stored resources again
    TERMINATE = "terminate"
    STOP = "stop"  # a training job, by name
    UPDATE = "update"


@dataclass(frozen=True)
class Mail:
    id: int
    kind: MailKind
    job_id: str | None
    body: dict[str, Any]


class Mailbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def post(self, kind: MailKind, job_id: str | None, body: dict[str, Any]) -> None:
        stmt = insert(job_requests).values(
            kind=kind.value, job_id=job_id, body=jsontext.dumps_text(body)
        )
        await self._db.write(lambda conn: conn.execute(stmt))

    async def take(self, limit: int = 1000) -> list[Mail]:
        """The oldest mail, removed as it is read (the leader applies it at once)."""
        probe = select(job_requests.c.id).limit(1)
        # Usually there is none: find that out without taking the write lock.
        if await self._db.read(lambda conn: conn.execute(probe).first()) is None:
            return []

        def work(conn: Connection) -> list[Row[Any]]:
            stmt = select(job_requests).order_by(job_requests.c.id).limit(limit)
            rows = conn.execute(stmt).all()
            if rows:  # exactly the rows read: ids can commit out of order on PostgreSQL
                conn.execute(
                    delete(job_requests).where(job_requests.c.id.in_([r.id for r in rows]))
                )
            return list(rows)

        rows = await self._db.write(work)
        return [
            Mail(row.id, MailKind(row.kind), row.job_id, jsontext.loads(row.body)) for row in rows
        ]
