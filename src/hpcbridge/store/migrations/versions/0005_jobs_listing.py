"""Pages of the job list from an index, whatever the store holds.

Listing top-level jobs (``parent_id IS NULL``, newest first) used ``ix_jobs_parent``
for the NULL test: every top-level job matched and was sorted, 30 ms a page at 100k jobs
on SQLite. Only tasks have a parent and only tasks are looked up by it, so that index now
holds tasks alone (partial), and the planner walks ``ix_jobs_created`` in order instead.
``ix_jobs_state`` gains the same order (state, created_at, job_id): a list filtered by
state reads one page of it, and the reconciler's look-ups by state use its prefix.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TASKS_ONLY = sa.text("parent_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_jobs_parent", table_name="jobs")
    op.create_index(
        "ix_jobs_parent",
        "jobs",
        ["parent_id"],
        sqlite_where=_TASKS_ONLY,
        postgresql_where=_TASKS_ONLY,
    )
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.create_index("ix_jobs_state", "jobs", ["state", "created_at", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.drop_index("ix_jobs_parent", table_name="jobs")
    op.create_index("ix_jobs_parent", "jobs", ["parent_id"])
