"""Tables. Queried columns are real columns; the rest of each object is a JSON document."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["job_requests", "jobs", "metadata", "resources", "training_jobs"]

metadata = MetaData()

# Environments, queues, policies and quota shares: few rows, looked up by (kind, name).
resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(300), nullable=False),
    Column("doc", Text, nullable=False),
    UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
)

jobs = Table(
    "service_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("queue", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("job_name_lower", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("share_identifier", String(255)),
    Column("quota_share_name", String(128)),
    Column("client_token", String(64)),
    Column("doc", Text, nullable=False),
    UniqueConstraint("client_token", name="uq_service_jobs_client_token"),
    # Listing is newest first, keyset-paged on (created_at, job_id) within one queue.
    Index("ix_jobs_queue_status_created", "queue", "status", "created_at", "job_id"),
    Index("ix_jobs_queue_created", "queue", "created_at", "job_id"),
    Index("ix_jobs_queue_name", "queue", "job_name_lower", "created_at", "job_id"),
    Index("ix_jobs_queue_share", "queue", "share_identifier", "status", "created_at"),
    Index("ix_jobs_queue_quota_share", "queue", "quota_share_name", "status", "created_at"),
    # The runtime rebuilds its in-memory index from the active jobs only.
    Index("ix_jobs_status_seq", "status", "seq"),
)

# One row per training job created for a dispatch; serves the SageMaker facade.
training_jobs = Table(
    "training_jobs",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("job_id", String(36), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("doc", Text, nullable=False),
    Index("ix_training_jobs_created", "created_at", "name"),
    Index("ix_training_jobs_job", "job_id"),
)

# What follower replicas ask of the scheduling leader (terminate, update, reload).
job_requests = Table(
    "job_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36)),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
)

# One row (id 1): who leads, since when, and the epoch every scheduling write is fenced by.
leadership = Table(
    "leadership",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", String(255), nullable=False),
    Column("since", BigInteger, nullable=False),
)
