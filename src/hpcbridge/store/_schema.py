"""SQL tables. Alembic migrations under ``migrations/`` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("parent_id", String(64), ForeignKey("jobs.job_id"), nullable=True),
    Column("task_index", Integer, nullable=True),
    Column("task_params", JSON, nullable=False),
    Column("task_count", Integer, nullable=False, default=0),
    Column("name", String(128), nullable=False),
    Column("project", String(128), nullable=False),
    Column("workload_class", String(128), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("backend", String(64), nullable=False),
    Column("cluster", String(128), nullable=True),
    Column("spec", JSON, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reason", Text, nullable=True),
    Column("failure_class", String(32), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("idempotency_key", String(256), nullable=True, unique=True),
    Column("owner", String(128), nullable=False, server_default=""),
    Index("ix_jobs_state", "state", "created_at", "job_id"),
    # tasks only: a NULL test must not pick it over ix_jobs_created (migration 0005)
    Index(
        "ix_jobs_parent",
        "parent_id",
        sqlite_where=text("parent_id IS NOT NULL"),
        postgresql_where=text("parent_id IS NOT NULL"),
    ),
    Index("ix_jobs_project_name", "project", "name"),
    Index("ix_jobs_created", "created_at", "job_id"),
    Index("ix_jobs_project_created", "project", "created_at", "job_id"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("job_id", String(64), ForeignKey("jobs.job_id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("token", String(64), nullable=False),
    Column("backend", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("native_id", String(128), nullable=True),
    Column("nodes", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("submitted_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("signal", Integer, nullable=True),
    Column("failure_class", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", JSON, nullable=False),
    UniqueConstraint("token", name="uq_attempts_token"),
    Index("ix_attempts_state", "state"),
    Index("ix_attempts_ended", "ended_at"),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), ForeignKey("jobs.job_id"), nullable=False),
    Column("attempt", Integer, nullable=True),
    Column("time", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("data", JSON, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_events_job", "job_id", "seq"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("project", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", Float, nullable=True),
)

audit = Table(
    "audit",
    metadata,
    # Numbered by the writer (under a lock), since the hash covers the number.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("via", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("target", String(128), nullable=True),
    Column("project", String(128), nullable=True),
    Column("source", String(128), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_project", "project", "seq"),
)
