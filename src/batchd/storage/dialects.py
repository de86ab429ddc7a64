"""The few places where SQLite and PostgreSQL SQL differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

__all__ = ["WORK_CHANNEL", "insert_ignoring_conflicts", "insert_new_rows", "notify_work"]


# What the scheduling leader listens on (PostgreSQL): new jobs or requests for it.
WORK_CHANNEL = "batchd_work"
_NOTIFY = text(f"NOTIFY {WORK_CHANNEL}")


def notify_work(conn: Connection) -> None:
    """Within a write transaction: wake the leader when it commits, wherever it runs. SQLite's
    processes share one machine and poll each tick instead."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY)


def insert_ignoring_conflicts(dialect: str, table: Table) -> Insert:
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


def insert_new_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any that conflict with a stored row; returns how many went in.

    SQLite's driver sums the rows an executemany changed; asyncpg reports no count for a
    batch, so PostgreSQL returns the keys of the rows it inserted instead.
    """
    dialect = conn.dialect.name
    statement = insert_ignoring_conflicts(dialect, table)
    if dialect == "sqlite":
        return int(conn.execute(statement, rows).rowcount)
    key = next(iter(table.primary_key.columns))
    return len(conn.execute(statement.returning(key), rows).all())
