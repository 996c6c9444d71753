"""Job states, failure classes and the one transition table the store enforces.

A *job* keeps one ``job_id`` for life; each scheduler submission is an *attempt*. The
table below is the whole state machine: ``transition()`` in the store refuses anything
else, and every accepted change writes an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class JobState(StrEnum):
    ACCEPTED = "accepted"
    STAGING_IN = "staging_in"
    QUEUED = "queued"
    RUNNING = "running"
    STAGING_OUT = "staging_out"
    SUCCEEDED = "succeeded"
    RETRY_WAIT = "retry_wait"
    HELD = "held"
    LOST = "lost"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
)

_S = JobState
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    _S.ACCEPTED: frozenset(
        {_S.STAGING_IN, _S.QUEUED, _S.HELD, _S.RUNNING, _S.FAILED, _S.CANCELLED}
    ),
    _S.STAGING_IN: frozenset({_S.QUEUED, _S.HELD, _S.RETRY_WAIT, _S.FAILED, _S.CANCELLED}),
    _S.QUEUED: frozenset({_S.RUNNING, _S.HELD, _S.RETRY_WAIT, _S.LOST, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset(
        {_S.STAGING_OUT, _S.SUCCEEDED, _S.QUEUED, _S.RETRY_WAIT, _S.LOST, _S.FAILED, _S.CANCELLED}
    ),
    _S.STAGING_OUT: frozenset({_S.SUCCEEDED, _S.RETRY_WAIT, _S.FAILED, _S.CANCELLED}),
    _S.RETRY_WAIT: frozenset({_S.STAGING_IN, _S.QUEUED, _S.HELD, _S.FAILED, _S.CANCELLED}),
    _S.HELD: frozenset({_S.STAGING_IN, _S.QUEUED, _S.FAILED, _S.CANCELLED}),
    _S.LOST: frozenset(
        {_S.QUEUED, _S.RUNNING, _S.SUCCEEDED, _S.RETRY_WAIT, _S.FAILED, _S.CANCELLED}
    ),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}
"""Allowed next states. ``accepted -> running`` exists for array parents, whose state
follows their tasks; ``running -> queued`` is a scheduler requeue of the same attempt."""


def can_transition(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]


class FailureClass(StrEnum):
    NODE_FAILURE = "node_failure"
    PREEMPTED = "preempted"
    TIMEOUT = "timeout"
    OOM = "oom"
    APP_ERROR = "app_error"
    SPEC_ERROR = "spec_error"
    STAGING_ERROR = "staging_error"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    LICENCE_UNAVAILABLE = "licence_unavailable"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    LOST = "lost"
    CANCELLED = "cancelled"


INFRASTRUCTURE_FAILURES: frozenset[FailureClass] = frozenset(
    {
        FailureClass.NODE_FAILURE,
        FailureClass.PREEMPTED,
        FailureClass.LOST,
        FailureClass.BACKEND_UNAVAILABLE,
    }
)
"""Failures that are not the job's fault; they count against the platform's SLOs."""

DEFAULT_RETRY_ON: frozenset[FailureClass] = frozenset(
    {
        FailureClass.NODE_FAILURE,
        FailureClass.PREEMPTED,
        FailureClass.LOST,
        FailureClass.BACKEND_UNAVAILABLE,
        FailureClass.STAGING_ERROR,
    }
)
"""Classes retried when a spec does not say otherwise: infrastructure, never app errors."""


class AttemptState(StrEnum):
    """Life of one scheduler submission."""

    PREPARED = "prepared"  # row and token written, scheduler not yet called
    SUBMITTED = "submitted"  # the scheduler knows it (native id recorded)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (AttemptState.SUCCEEDED, AttemptState.FAILED)
