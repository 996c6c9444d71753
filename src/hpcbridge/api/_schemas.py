"""What the REST API answers: a stable, typed view of the records (never a backend's private
details), as pydantic models, so that the OpenAPI document describes every response."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from hpcbridge.provenance import without_secrets
from hpcbridge.states import JobState
from hpcbridge.store import Attempt, Event, Job


class JobOut(BaseModel):
    job_id: str
    name: str
    project: str
    owner: str = ""
    state: JobState
    workload_class: str
    backend: str
    cluster: str | None = None
    priority: int = 0
    tags: dict[str, str] = Field(default_factory=dict)
    parent_id: str | None = None
    task_index: int | None = None
    task_params: dict[str, str] = Field(default_factory=dict)
    task_count: int = 0
    reason: str | None = None
    failure_class: str | None = None
    exit_code: int | None = None
    attempt_count: int = 0
    cancel_requested: bool = False
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    version: int = 0
    idempotency_key: str | None = None
    spec: dict[str, Any] = Field(
        default_factory=dict,
        description="The resolved JobSpec document; values of environment variables whose "
        "names look like secrets are redacted.",
    )

    @classmethod
    def of(cls, job: Job) -> JobOut:
        plain = _plain(job, cls)
        env = plain["spec"].get("env")
        if isinstance(env, dict):  # anyone who may read the job reads its spec
            plain["spec"] = plain["spec"] | {"env": without_secrets(env)}
        return cls.model_validate(plain)


class JobPage(BaseModel):
    """One page of jobs, newest first; ``next_cursor`` fetches the next (null: the last)."""

    items: list[JobOut]
    next_cursor: str | None = None


class AttemptOut(BaseModel):
    job_id: str
    number: int
    backend: str
    state: str
    native_id: str | None = None
    nodes: list[str] = Field(default_factory=list)
    created_at: float
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    failure_class: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls.model_validate(_plain(attempt, cls))


class EventOut(BaseModel):
    seq: int
    job_id: str
    time: float
    kind: str
    attempt: int | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    actor: str = "system"
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls.model_validate(_plain(event, cls))


class LogTail(BaseModel):
    job_id: str
    attempt: int
    stream: str
    exists: bool
    lines: list[str]


class NodeOut(BaseModel):
    """A scheduler node as the site's operators see it."""

    name: str
    state: str
    state_flags: list[str] = Field(default_factory=list)
    partitions: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    reason: str | None = None
    cpus_alloc: int | None = None
    cpus_total: int | None = None
    mem_alloc_mb: int | None = None
    mem_total_mb: int | None = None


class DrainRequest(BaseModel):
    reason: str = Field(default="drained through the API", min_length=1, max_length=500)


class TokenRequest(BaseModel):
    project: str = Field(min_length=1, max_length=200)
    role: str = Field(description="admin, operator, member or viewer")
    ttl: str = Field(default="8h", description="How long it is valid: seconds or 90m, 8h, 7d.")
    subject: str | None = Field(default=None, max_length=200)


class TokenOut(BaseModel):
    token_id: str
    project: str
    role: str
    subject: str
    created_at: float
    expires_at: float
    created_by: str
    revoked_at: float | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="The raw token: shown this once, stored only as a hash.")


class AuditOut(BaseModel):
    seq: int
    at: float
    actor: str
    via: str
    action: str
    outcome: str
    target: str | None = None
    project: str | None = None
    source: str
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str


class AuditHeadOut(BaseModel):
    seq: int
    hash: str


class ChainReportOut(BaseModel):
    """Whether the audit chain is intact; if not, the first bad record and what is wrong."""

    intact: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head: AuditHeadOut | None = None


def _plain(record: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of a record dataclass that ``model`` declares, as plain JSON values."""
    return {
        name: jsonable(getattr(record, name))
        for name in model.model_fields
        if hasattr(record, name)
    }


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, mappings and sequences as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value
