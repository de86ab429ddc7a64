"""Initial schema: resources and service jobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    )
    op.create_table(
        "service_jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("job_name_lower", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("share_identifier", sa.String(255)),
        sa.Column("quota_share_name", sa.String(128)),
        sa.Column("client_token", sa.String(64)),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.UniqueConstraint("client_token", name="uq_service_jobs_client_token"),
    )
    for name, columns in {
        "ix_jobs_queue_status_created": ["queue", "status", "created_at", "job_id"],
        "ix_jobs_queue_created": ["queue", "created_at", "job_id"],
        "ix_jobs_queue_name": ["queue", "job_name_lower", "created_at", "job_id"],
        "ix_jobs_queue_share": ["queue", "share_identifier", "status", "created_at"],
        "ix_jobs_queue_quota_share": ["queue", "quota_share_name", "status", "created_at"],
        "ix_jobs_status_seq": ["status", "seq"],
    }.items():
        op.create_index(name, "service_jobs", columns)


def downgrade() -> None:
    op.drop_table("service_jobs")
    op.drop_table("resources")
