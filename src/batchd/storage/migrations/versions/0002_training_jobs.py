"""Training jobs created by dispatches, for the SageMaker facade.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
    )
    op.create_index("ix_training_jobs_created", "training_jobs", ["created_at", "name"])
    op.create_index("ix_training_jobs_job", "training_jobs", ["job_id"])


def downgrade() -> None:
    op.drop_table("training_jobs")
