"""What ``decide()`` asks for; the loop applies these against the store and backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpcbridge.states import FailureClass, JobState


@dataclass(frozen=True, slots=True)
class Transition:
    target: JobState
    reason: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Submit:
    """Start a new attempt, or hand a prepared one to the backend again."""


@dataclass(frozen=True, slots=True)
class Kill:
    failure_class: FailureClass
    reason: str


@dataclass(frozen=True, slots=True)
class RecordAttempt:
    """Write what was observed of the latest attempt."""

    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Note:
    """Change the job's human-readable reason without changing its state."""

    reason: str


@dataclass(frozen=True, slots=True)
class Continue:
    """The scheduler requeued the attempt's job itself (Slurm ``--requeue``): open a new
    attempt that follows the same native job instead of submitting another."""


@dataclass(frozen=True, slots=True)
class CancelTasks:
    """Ask every unfinished task of an array job to cancel."""


Action = Transition | Submit | Kill | RecordAttempt | Note | CancelTasks | Continue
