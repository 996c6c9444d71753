"""What the store keeps: frozen records of jobs, attempts, events and leases."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, NewType

from hpcbridge.states import AttemptState, FailureClass, JobState

JobId = NewType("JobId", str)

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u


def new_job_id() -> JobId:
    return JobId("j" + "".join(secrets.choice(_ALPHABET) for _ in range(9)))


def task_job_id(parent: JobId, index: int) -> JobId:
    return JobId(f"{parent}.{index}")


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to create; ``spec`` is the resolved JSON document of the job (or task)."""

    job_id: JobId
    name: str
    project: str
    workload_class: str
    backend: str
    spec: dict[str, Any]
    priority: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    cluster: str | None = None
    parent_id: JobId | None = None
    task_index: int | None = None
    task_params: dict[str, str] = field(default_factory=dict)
    task_count: int = 0
    idempotency_key: str | None = None
    owner: str = ""
    """The subject of the principal that submitted it (empty for jobs from before owners)."""


@dataclass(frozen=True, slots=True)
class Job:
    job_id: JobId
    name: str
    project: str
    workload_class: str
    backend: str
    spec: dict[str, Any]
    state: JobState
    version: int
    created_at: float
    updated_at: float
    priority: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    cluster: str | None = None
    parent_id: JobId | None = None
    task_index: int | None = None
    task_params: dict[str, str] = field(default_factory=dict)
    task_count: int = 0
    reason: str | None = None
    failure_class: FailureClass | None = None
    exit_code: int | None = None
    attempt_count: int = 0
    next_attempt_at: float | None = None
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None
    owner: str = ""

    @property
    def is_array_parent(self) -> bool:
        return self.task_count > 0


@dataclass(frozen=True, slots=True)
class Attempt:
    job_id: JobId
    number: int
    token: str
    backend: str
    state: AttemptState
    created_at: float
    native_id: str | None = None
    nodes: tuple[str, ...] = ()
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    failure_class: FailureClass | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Backend-private data (how to start, find and read this attempt) plus the shared
    parts below: read those through the typed properties, not by key."""

    @property
    def status_dir(self) -> str | None:
        """Where the job side writes its status (pid, exit, events), on either backend."""
        value = self.details.get("status_dir") or self.details.get("dir")
        return value if isinstance(value, str) else None

    @property
    def kill_order(self) -> KillOrder | None:
        """The control plane's order to stop this attempt, once recorded."""
        order = self.details.get("kill")
        if not isinstance(order, dict) or "failure_class" not in order:
            return None
        return KillOrder(FailureClass(order["failure_class"]), float(order.get("at") or 0.0))

    @property
    def partition_kind(self) -> str | None:
        """``spot`` or ``regular`` where the backend knows (Slurm's partitions)."""
        value = self.details.get("partition_kind")
        return value if isinstance(value, str) else None

    @property
    def lost_core_hours(self) -> float | None:
        """Work lost since the last checkpoint, for a failed attempt."""
        value = self.details.get("lost_core_hours")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class KillOrder:
    failure_class: FailureClass
    at: float


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    job_id: JobId
    time: float
    kind: str
    attempt: int | None = None
    from_state: JobState | None = None
    to_state: JobState | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = "system"


@dataclass(frozen=True, slots=True)
class JobFilter:
    states: frozenset[JobState] | None = None
    project: str | None = None
    name: str | None = None
    parent_id: JobId | None = None
    top_level_only: bool = False
    limit: int | None = None
    projects: frozenset[str] | None = None
    """Only jobs of these projects (None: any); what a principal may see."""
    owner: str | None = None
    before: tuple[float, str] | None = None
    """Only jobs older than this ``(created_at, job_id)``: the cursor of the next page
    of ``newest_jobs``, which inserts since the first page do not shift."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who leads under ``name`` until ``expires_at``. ``epoch`` grows by one with each new
    holder: a write that carries an older epoch is from a leader that was replaced."""

    name: str
    holder: str
    epoch: int
    expires_at: float
