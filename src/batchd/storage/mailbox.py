"""What follower replicas ask of the scheduling leader, through the database."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from batchd import jsontext
from batchd.storage.database import Database
from batchd.storage.dialects import notify_work
from batchd.storage.schema import job_requests

__all__ = ["Mail", "MailKind", "Mailbox", "remove_mail"]


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

        def work(conn: Connection) -> None:
            conn.execute(stmt)
            notify_work(conn)

        await self._db.write(work)

    async def post_many(
        self, kind: MailKind, items: Sequence[tuple[str | None, dict[str, Any]]]
    ) -> None:
        """Several requests of one kind in one transaction."""
        rows = [
            {"kind": kind.value, "job_id": job_id, "body": jsontext.dumps_text(body)}
            for job_id, body in items
        ]

        def work(conn: Connection) -> None:
            conn.execute(insert(job_requests), rows)
            notify_work(conn)

        if rows:
            await self._db.write(work)

    async def read(self, limit: int = 1000) -> list[Mail]:
        """The oldest mail, left in place: the leader removes each request in the transaction
        that commits its effect (``JobWrites.save(done_mail=...)``), so one that was read by a
        leader that died before applying it is read again by the next."""
        stmt = select(job_requests).order_by(job_requests.c.id).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(stmt).all())
        return [
            Mail(row.id, MailKind(row.kind), row.job_id, jsontext.loads(row.body)) for row in rows
        ]


def remove_mail(conn: Connection, ids: Sequence[int]) -> None:
    """Within a write transaction: the requests whose effect it commits."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        conn.execute(delete(job_requests).where(job_requests.c.id.in_(chunk)))
