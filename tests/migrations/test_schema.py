"""Migrations build exactly the schema that ``storage/schema.py`` declares, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from batchd.storage.database import open_database
from batchd.storage.schema import metadata
from batchd.storage.store import Store


def _inspect(db_url: str, probe: Any) -> Any:
    async def main() -> Any:
        store = await Store.open(db_url)  # runs `alembic upgrade head`
        await store.close()
        db = open_database(db_url)
        try:
            return await db.read(probe)
        finally:
            await db.close()

    return asyncio.run(main())


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _shape(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    shape: dict[str, Any] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        shape[table] = {
            "columns": {
                c["name"]: (str(c["type"]).split("(")[0].upper(), c["nullable"])
                for c in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            },
            "unique": {
                u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            },
        }
    return shape


def test_alembic_head_matches_the_declared_metadata(db_url: str) -> None:
    assert _inspect(db_url, _diff) == []


def test_every_declared_table_column_index_and_constraint_exists(db_url: str) -> None:
    shape = _inspect(db_url, _shape)
    assert set(shape) == set(metadata.tables)
    for name, table in metadata.tables.items():
        found = shape[name]
        assert set(found["columns"]) == {c.name for c in table.columns}, name
        for column in table.columns:
            assert found["columns"][column.name][1] == column.nullable, (name, column.name)
        assert found["primary_key"] == [c.name for c in table.primary_key.columns], name
        declared = {
            i.name: (tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes
        }
        indexes = {k: v for k, v in found["indexes"].items() if k in declared}
        assert indexes == declared, name
        for constraint in table.constraints:
            columns = tuple(c.name for c in constraint.columns)  # type: ignore[attr-defined]
            if str(constraint.name or "").startswith("uq_"):
                assert found["unique"].get(constraint.name) == columns, (name, constraint.name)


def test_upgrading_an_up_to_date_database_changes_nothing(db_url: str) -> None:
    first = _inspect(db_url, _shape)
    assert _inspect(db_url, _shape) == first
