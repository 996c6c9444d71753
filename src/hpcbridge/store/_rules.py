"""Checks shared by every store implementation, so they cannot drift apart."""

from __future__ import annotations

from typing import Any

from hpcbridge.errors import ConflictError, InvalidTransitionError, StoreError
from hpcbridge.states import JobState, can_transition
from hpcbridge.store._records import Attempt, Job

JOB_MUTABLE_FIELDS = frozenset(
    {
        "reason",
        "failure_class",
        "exit_code",
        "attempt_count",
        "next_attempt_at",
        "cancel_requested",
        "started_at",
        "finished_at",
        "priority",
    }
)
ATTEMPT_MUTABLE_FIELDS = frozenset(
    {
        "state",
        "native_id",
        "nodes",
        "submitted_at",
        "started_at",
        "ended_at",
        "exit_code",
        "signal",
        "failure_class",
        "reason",
        "details",
    }
)


def check_transition(job: Job, target: JobState, expected_version: int) -> None:
    check_version(job, expected_version)
    if not can_transition(job.state, target):
        raise InvalidTransitionError(
            f"job {job.job_id}: cannot go from {job.state.value} to {target.value}",
            hint="the state machine table in hpcbridge.states lists the allowed moves",
        )


def check_version(job: Job, expected_version: int) -> None:
    if job.version != expected_version:
        raise ConflictError(
            f"job {job.job_id} changed meanwhile (version {job.version}, expected "
            f"{expected_version})",
            hint="reload the job and decide again",
        )


def check_fields(fields: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise StoreError(f"{what}: cannot update {sorted(unknown)}; allowed: {sorted(allowed)}")


def attempt_fields(fields: dict[str, Any]) -> dict[str, Any]:
    check_fields(fields, ATTEMPT_MUTABLE_FIELDS, "attempt")
    if "nodes" in fields:
        fields = fields | {"nodes": tuple(fields["nodes"])}
    return fields


def transition_fields(
    job: Job, target: JobState, now: float, fields: dict[str, Any]
) -> dict[str, Any]:
    """Columns a transition sets besides the state: start and finish times."""
    check_fields(fields, JOB_MUTABLE_FIELDS, "job")
    extra: dict[str, Any] = {}
    if target is JobState.RUNNING and job.started_at is None:
        extra["started_at"] = now
    if target.terminal:
        extra["finished_at"] = now
    return extra | fields


def next_attempt_number(attempts: list[Attempt]) -> int:
    return max((a.number for a in attempts), default=0) + 1
