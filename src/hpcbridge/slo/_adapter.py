"""From the store's event log to ``FinishedJob`` records, the input of the SLO math.

The same events the telemetry collector folds into counters, read the same way: a job
counts when it reaches a terminal state; its queue wait is from acceptance to its first
start; each ``attempt_succeeded``/``attempt_failed`` event is one attempt. Array parents
are skipped (their tasks are the jobs that run). ``FinishedJobFeed`` reads incrementally,
so a long-running evaluator only ever reads new events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hpcbridge.errors import NotFoundError
from hpcbridge.slo._gc import paused_gc
from hpcbridge.slo._notify import RUNBOOK_BY_FAILURE_CLASS
from hpcbridge.slo._records import FinishedAttempt, FinishedJob
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Event, Job, Store

_CLASSES = frozenset(c.value for c in FailureClass)
_ATTEMPT_END = frozenset({"attempt_succeeded", "attempt_failed"})
_RELEVANT = frozenset({"accepted", "transition", "checkpoint_saved", *_ATTEMPT_END})
_BULK = 32


def runbook_for(failure_class: str | FailureClass | None) -> str:
    """The runbook (file stem under docs/runbooks) for a failure class; triage by default."""
    value = failure_class.value if isinstance(failure_class, FailureClass) else failure_class
    return RUNBOOK_BY_FAILURE_CLASS.get(value or "", "triage")


class _Labels(NamedTuple):
    """What the feed needs of a job record: while a whole history is read, every job's
    labels are kept, and a ``Job`` would keep its spec and tags too."""

    job_id: str
    project: str
    workload_class: str
    backend: str
    parent: bool
    created_at: float

    @classmethod
    def of(cls, job: Job) -> _Labels:
        return cls(
            job.job_id,
            job.project,
            job.workload_class,
            job.backend,
            job.is_array_parent,
            job.created_at,
        )


@dataclass(slots=True)
class _Partial:
    job_id: str
    project: str
    workload_class: str
    backend: str
    parent: bool
    created_at: float
    started_at: float | None = None
    attempts: list[FinishedAttempt] = field(default_factory=list)
    checkpoints: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, labels: _Labels) -> _Partial:
        return cls(*labels)


def _failure_class(value: object) -> str:
    return value if isinstance(value, str) and value in _CLASSES else ""


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return 0.0


class FinishedJobFeed:
    """Jobs that finished since the previous ``poll()``, from the event log."""

    def __init__(self, store: Store, *, chunk_size: int = 5000) -> None:
        self._store = store
        self._chunk = chunk_size
        self._seq = 0
        self._active: dict[str, _Partial] = {}

    @property
    def last_seq(self) -> int:
        return self._seq

    def poll(self) -> list[FinishedJob]:
        with paused_gc():  # the first poll reads the whole history
            return self._poll()

    def _poll(self) -> list[FinishedJob]:
        finished: list[FinishedJob] = []
        preloaded: dict[str, _Labels] | None = None
        while True:
            events = self._store.all_events(after_seq=self._seq, limit=self._chunk)
            wanted: set[str] = {
                e.job_id for e in events if e.kind in _RELEVANT and e.job_id not in self._active
            }
            if preloaded is None and len(events) == self._chunk and len(wanted) > _BULK:
                preloaded = {job.job_id: _Labels.of(job) for job in self._store.list_jobs()}
            jobs = self._lookup(wanted, preloaded)
            for event in events:
                self._seq = max(self._seq, event.seq)
                done = self._apply(event, jobs)
                if done is not None:
                    finished.append(done)
            if len(events) < self._chunk:
                return finished

    def _lookup(self, wanted: set[str], preloaded: dict[str, _Labels] | None) -> dict[str, _Labels]:
        found: dict[str, _Labels] = {}
        if preloaded is not None:
            found = {i: preloaded[i] for i in wanted if i in preloaded}
        elif len(wanted) > _BULK:
            active = self._store.active_jobs()
            found = {j.job_id: _Labels.of(j) for j in active if j.job_id in wanted}
        for job_id in wanted - found.keys():
            try:
                found[job_id] = _Labels.of(self._store.get_job(job_id))
            except NotFoundError:
                continue
        return found

    def _apply(self, event: Event, jobs: dict[str, _Labels]) -> FinishedJob | None:
        if event.kind not in _RELEVANT:
            return None
        partial = self._active.get(event.job_id)
        if partial is None:
            job = jobs.get(event.job_id)
            if job is None:
                return None
            partial = _Partial.of(job)
            if event.kind == "accepted":
                self._active[event.job_id] = partial
        if partial.parent:
            if event.kind == "transition" and event.to_state and event.to_state.terminal:
                self._active.pop(event.job_id, None)
            return None
        if event.kind in _ATTEMPT_END:
            partial.attempts.append(_attempt(event, partial))
        elif event.kind == "checkpoint_saved" and event.attempt is not None:
            duration = _number(event.data.get("duration_s"))
            partial.checkpoints.setdefault(event.attempt, []).append(duration)
        elif event.kind == "transition" and event.to_state is JobState.RUNNING:
            if partial.started_at is None:
                partial.started_at = event.time
        elif event.kind == "transition" and event.to_state and event.to_state.terminal:
            self._active.pop(event.job_id, None)
            return _finished(event, partial)
        return None


def _attempt(event: Event, partial: _Partial) -> FinishedAttempt:
    data: dict[str, Any] = event.data
    succeeded = event.kind == "attempt_succeeded"
    failure_class = "" if succeeded else _failure_class(data.get("failure_class"))
    if succeeded:
        outcome = "succeeded"
    elif failure_class == FailureClass.CANCELLED.value:
        outcome = "cancelled"
    else:
        outcome = "failed"
    backend = data.get("backend")
    kind = data.get("partition_kind")
    number = event.attempt if event.attempt is not None else len(partial.attempts) + 1
    return FinishedAttempt(
        number=number,
        outcome=outcome,
        failure_class=failure_class,
        finished_at=event.time,
        backend=backend if isinstance(backend, str) and backend else partial.backend,
        partition_kind=kind if kind in ("spot", "regular") else "regular",
        run_s=_number(data.get("run_s")),
        checkpoint_durations_s=tuple(partial.checkpoints.pop(number, ())),
    )


def _finished(event: Event, partial: _Partial) -> FinishedJob:
    state = event.to_state
    if state is JobState.SUCCEEDED:
        outcome, failure_class = "succeeded", ""
    elif state is JobState.CANCELLED:
        outcome, failure_class = "cancelled", FailureClass.CANCELLED.value
    else:
        outcome, failure_class = "failed", _failure_class(event.data.get("failure_class"))
    started = partial.started_at
    return FinishedJob(
        job_id=partial.job_id,
        project=partial.project,
        workload_class=partial.workload_class,
        outcome=outcome,
        failure_class=failure_class,
        finished_at=event.time,
        queue_wait_s=None if started is None else max(started - partial.created_at, 0.0),
        started_at=started,
        attempts=tuple(partial.attempts),
    )


def finished_jobs(store: Store, *, since: float | None = None) -> list[FinishedJob]:
    """Every job that finished (at or after ``since``), oldest first."""
    jobs = FinishedJobFeed(store).poll()
    return [j for j in jobs if since is None or j.finished_at >= since]


def prune(jobs: Iterable[FinishedJob], *, before: float) -> list[FinishedJob]:
    """Drop jobs finished before ``before`` (older than every window still evaluated)."""
    return [j for j in jobs if j.finished_at >= before]
