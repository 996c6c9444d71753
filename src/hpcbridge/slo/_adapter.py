"""From the store's event log to ``FinishedJob`` records, the input of the SLO math.

The records come from the one event fold (``hpcbridge.events``), the same one the
telemetry collector turns into counters: a job counts when it reaches a terminal state;
its queue wait is from acceptance to its first start; each ``attempt_succeeded`` /
``attempt_failed`` event is one attempt. Array parents are skipped (their tasks are the
jobs that run). ``FinishedJobFeed`` reads incrementally, so a long-running evaluator only
ever reads new events.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbridge.events import EventFold, EventReader, FinishedJob, FoldListener, JobLabels
from hpcbridge.slo._gc import paused_gc
from hpcbridge.slo._notify import RUNBOOK_BY_FAILURE_CLASS
from hpcbridge.states import FailureClass
from hpcbridge.store import Store


def runbook_for(failure_class: str | FailureClass | None) -> str:
    """The runbook (file stem under docs/runbooks) for a failure class; triage by default."""
    value = failure_class.value if isinstance(failure_class, FailureClass) else failure_class
    return RUNBOOK_BY_FAILURE_CLASS.get(value or "", "triage")


class _Finished(FoldListener):
    """Keeps the jobs the fold closes; nothing else the fold tells matters here."""

    def __init__(self) -> None:
        self.jobs: list[FinishedJob] = []

    def job_finished(self, labels: JobLabels, job: FinishedJob, makespan_s: float) -> None:
        self.jobs.append(job)


class FinishedJobFeed:
    """Jobs that finished since the previous ``poll()``, from the event log."""

    def __init__(self, store: Store, *, chunk_size: int = 5000) -> None:
        self._finished = _Finished()
        self._fold = EventFold(self._finished)
        self._reader = EventReader(store, self._fold, chunk_size=chunk_size)

    @property
    def last_seq(self) -> int:
        return self._fold.seq

    def poll(self) -> list[FinishedJob]:
        with paused_gc():  # the first poll reads the whole history
            self._reader.read()
        jobs, self._finished.jobs = self._finished.jobs, []
        return jobs


def finished_jobs(store: Store, *, since: float | None = None) -> list[FinishedJob]:
    """Every job that finished (at or after ``since``), oldest first."""
    jobs = FinishedJobFeed(store).poll()
    return [j for j in jobs if since is None or j.finished_at >= since]


def prune(jobs: Iterable[FinishedJob], *, before: float) -> list[FinishedJob]:
    """Drop jobs finished before ``before`` (older than every window still evaluated)."""
    return [j for j in jobs if j.finished_at >= before]
