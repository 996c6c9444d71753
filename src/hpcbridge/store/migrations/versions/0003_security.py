"""Job owners, API tokens (hashes only) and the hash-chained audit log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=False, server_default=""))
    op.create_index("ix_jobs_created", "jobs", ["created_at", "job_id"])
    op.create_index("ix_jobs_project_created", "jobs", ["project", "created_at", "job_id"])
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("project", sa.String(128), nullable=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_project", "audit", ["project", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_project", "audit")
    op.drop_table("audit")
    op.drop_table("tokens")
    op.drop_index("ix_jobs_project_created", "jobs")
    op.drop_index("ix_jobs_created", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
