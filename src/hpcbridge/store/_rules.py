"""Checks shared by every store implementation, so they cannot drift apart."""

from __future__ import annotations

from typing import Any

from hpcbridge.errors import ConflictError, FencedError, InvalidTransitionError, StoreError
from hpcbridge.states import JobState, can_transition
from hpcbridge.store._records import Attempt, Job, Lease

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


def take_lease(current: Lease, holder: str, *, now: float, ttl_s: float) -> Lease | None:
    """The lease ``holder`` gets by asking at ``now``, or None while another holds it.

    The holder named in the record keeps its epoch (a renewal, even past expiry: nobody
    took over meanwhile). Anyone else gets the lease once it is free (released, or never
    held) or expired, with the next epoch. Holder names must be unique per process.
    """
    if not holder:
        raise StoreError(f"lease {current.name!r}: the holder name must not be empty")
    if ttl_s <= 0:
        raise StoreError(f"lease {current.name!r}: ttl_s must be positive, not {ttl_s}")
    if current.holder == holder:
        return Lease(current.name, holder, current.epoch, now + ttl_s)
    if current.holder and current.expires_at > now:
        return None
    return Lease(current.name, holder, current.epoch + 1, now + ttl_s)


def free_lease(name: str) -> Lease:
    """The record of a lease nobody has held yet."""
    return Lease(name, "", 0, 0.0)


def check_fence(lease: Lease, current: Lease | None) -> None:
    """Refuse a write made under ``lease`` when the store knows a newer epoch."""
    if current is not None and current.epoch == lease.epoch:
        return
    newer = "is gone" if current is None else f"is at epoch {current.epoch}"
    if current is not None and current.holder:
        newer += f", held by {current.holder}"
    raise FencedError(
        f"lease {lease.name!r}: write refused, epoch {lease.epoch} of {lease.holder} is "
        f"stale (the lease {newer})",
        hint="another process became the leader; stop and acquire the lease again",
    )


def lost_lease(lease: Lease, current: Lease | None) -> FencedError:
    """The error of a renewal that found the lease taken over (or gone)."""
    try:
        check_fence(lease, current)
    except FencedError as error:
        return error
    return FencedError(
        f"lease {lease.name!r}: cannot renew epoch {lease.epoch}, it is held by "
        f"{current.holder if current is not None else 'nobody'}",
        hint="another process became the leader; stop and acquire the lease again",
    )
