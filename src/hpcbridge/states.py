"""Job states, failure classes and the one transition table the store enforces.

A *job* keeps one ``job_id`` for life; each scheduler submission is an *attempt*. The
table below is the whole state machine: ``transition()`` in the store refuses anything
else, and every accepted change writes an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class StateFilter:
    """What one ``--state`` value selects: these states (None: any), and where Slurm's
    code names a way to fail (TO, OOM, NF...), only jobs that failed that way."""

    states: frozenset[JobState] | None
    failure_class: FailureClass | None = None

    def matches(self, state: JobState, failure_class: FailureClass | None) -> bool:
        if self.states is not None and state not in self.states:
            return False
        return self.failure_class is None or failure_class is self.failure_class


_WAITING = frozenset(
    {JobState.ACCEPTED, JobState.STAGING_IN, JobState.QUEUED, JobState.HELD, JobState.RETRY_WAIT}
)
_GOING = frozenset({JobState.RUNNING, JobState.STAGING_OUT})
_FAILED = frozenset({JobState.FAILED})
SLURM_STATE_CODES: Mapping[str, StateFilter] = {
    "PD": StateFilter(_WAITING),
    "CF": StateFilter(frozenset({JobState.QUEUED})),
    "RQ": StateFilter(frozenset({JobState.QUEUED, JobState.RETRY_WAIT})),
    "RH": StateFilter(frozenset({JobState.QUEUED, JobState.RETRY_WAIT})),
    "R": StateFilter(_GOING),
    "CG": StateFilter(_GOING),
    "S": StateFilter(frozenset({JobState.RUNNING})),
    "ST": StateFilter(frozenset({JobState.RUNNING})),
    "CD": StateFilter(frozenset({JobState.SUCCEEDED})),
    "F": StateFilter(_FAILED),
    "CA": StateFilter(frozenset({JobState.CANCELLED})),
    "DL": StateFilter(_FAILED),
    "TO": StateFilter(_FAILED, FailureClass.TIMEOUT),
    "OOM": StateFilter(_FAILED, FailureClass.OOM),
    "NF": StateFilter(_FAILED, FailureClass.NODE_FAILURE),
    "BF": StateFilter(_FAILED, FailureClass.NODE_FAILURE),
    "PR": StateFilter(None, FailureClass.PREEMPTED),
}
"""Slurm's compact state codes (``squeue -t``), as hpcbridge states: a preempted job may be
waiting for its next attempt, so PR selects by failure class in any state."""
_SLURM_STATE_NAMES = {
    "PENDING": "PD", "CONFIGURING": "CF", "REQUEUED": "RQ", "REQUEUE_HOLD": "RH",
    "RUNNING": "R", "COMPLETING": "CG", "SUSPENDED": "S", "STOPPED": "ST",
    "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA", "DEADLINE": "DL", "TIMEOUT": "TO",
    "OUT_OF_MEMORY": "OOM", "NODE_FAIL": "NF", "BOOT_FAIL": "BF", "PREEMPTED": "PR",
}  # fmt: skip


def parse_state_filter(text: str) -> StateFilter | None:
    """An hpcbridge state (``running``), or Slurm's code or name for one (``R``,
    ``pd``, ``TIMEOUT``), case-insensitively; None when it is neither."""
    word = text.strip()
    own = {state.value: state for state in JobState}.get(word.lower())
    if own is not None:
        return StateFilter(frozenset({own}))
    upper = word.upper()
    return SLURM_STATE_CODES.get(_SLURM_STATE_NAMES.get(upper, upper))
