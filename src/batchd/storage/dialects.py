"""The few places where SQLite and PostgreSQL SQL differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert, UpdateBase

__all__ = [
    "WORK_CHANNEL",
    "execute_rows",
    "insert_ignoring_conflicts",
    "insert_new_rows",
    "notify_work",
]


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


_IGNORING: dict[tuple[str, str], Insert] = {}


def insert_new_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any that conflict with a stored row; returns how many went in.

    SQLite's driver sums the rows an executemany changed; asyncpg reports no count for a
    batch, so PostgreSQL returns the keys of the rows it inserted instead.
    """
    dialect = conn.dialect.name
    statement = _IGNORING.get((dialect, table.name))
    if statement is None:
        statement = _IGNORING[dialect, table.name] = insert_ignoring_conflicts(dialect, table)
    if dialect == "sqlite":
        return execute_rows(conn, statement, rows)
    key = next(iter(table.primary_key.columns))
    return len(conn.execute(statement.returning(key), rows).all())


# (statement, its SQL for the driver, the row keys in the order of its ``?``, values of its
# own), by (id of the statement, the keys rows have): statements are built once, at import.
_DriverSql = tuple[UpdateBase, str, tuple[str, ...], dict[str, Any]]
_DRIVER_SQL: dict[tuple[int, tuple[str, ...]], _DriverSql | None] = {}


def execute_rows(conn: Connection, statement: UpdateBase, rows: list[dict[str, Any]]) -> int:
    """``statement`` once per row (each a dict of its bind names; all with the same keys),
    in one executemany; how many rows it changed (on SQLite: PostgreSQL's driver reports no
    count for a batch, so 0 there).

    On SQLite the SQL is compiled once and each batch goes straight to the driver: for the
    one-row batches of the runtime's commits, SQLAlchemy's execution path cost as much again
    as SQLite's own work. Statements that need SQLAlchemy at run time (expanding ``IN``,
    type conversions) take its path."""
    if not rows:
        return 0
    keys = tuple(rows[0])
    found = _driver_sql(conn.dialect, statement, keys) if conn.dialect.name == "sqlite" else None
    if found is None:
        return int(conn.execute(statement, rows).rowcount or 0)
    _, sql, order, constants = found
    raw = conn.connection.driver_connection
    assert raw is not None
    if constants:
        rows = [{**constants, **row} for row in rows]
    cursor = raw.executemany(sql, [tuple(row[key] for key in order) for row in rows])
    return int(cursor.rowcount)


def _driver_sql(
    dialect: Dialect, statement: UpdateBase, keys: tuple[str, ...]
) -> _DriverSql | None:
    cache_key = (id(statement), keys)
    if cache_key in _DRIVER_SQL:
        return _DRIVER_SQL[cache_key]
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    order = tuple(compiled.positiontup or ())
    # Values written into the statement itself (``.values(status=...)``) are bound too.
    binds = compiled.binds
    constants = {
        name: binds[name].effective_value
        for name in order
        if name not in keys and name in binds and not binds[name].required
    }
    plain = (
        dialect.paramstyle == "qmark"
        and not compiled.literal_execute_params
        and not compiled.post_compile_params
        and not compiled._bind_processors
        and set(order) <= set(keys) | set(constants)
    )
    found = (statement, compiled.string, order, constants) if plain else None
    _DRIVER_SQL[cache_key] = found
    return found
