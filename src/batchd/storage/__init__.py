"""Durable state: one SQLAlchemy Core schema and store for SQLite and PostgreSQL."""
