"""Alembic environment: batchd always hands Alembic an open connection."""

from __future__ import annotations

from alembic import context

from batchd.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("batchd runs migrations itself: start `batchd serve`, it upgrades the db")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
