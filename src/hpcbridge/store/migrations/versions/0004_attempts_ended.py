"""Attempts by the time they ended: chargeback reports and budgets read a period's
finished attempts (at every submission a budget covers) without scanning them all.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attempts_ended", "attempts", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_ended", table_name="attempts")
