"""Counters and histograms from what the event fold (``hpcbridge.events``) tells.

``MetricTotals`` listens to the one ``EventFold``: each fact it is told (an attempt
finished, a job started, a checkpoint was saved...) becomes increments of the exported
series. The fold is a pure function of the event log, so replaying the same events from
``seq`` 0 gives the same values and counters never go backwards, across scrapes or
restarts.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

from hpcbridge.events import FinishedAttempt, FinishedJob, FoldListener, JobLabels
from hpcbridge.states import FailureClass
from hpcbridge.telemetry import _names as n

_ACTIVE = frozenset(n.ACTIVE_STATES)
_PREEMPTED = FailureClass.PREEMPTED.value

Labels = tuple[str, ...]


@dataclass(slots=True)
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((le_label(bound), float(running)))
        return out


def le_label(bound: float) -> str:
    """A bucket bound as prometheus_client writes it: ``60.0``, ``0.5``, ``+Inf``."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class MetricTotals(FoldListener):
    """The running totals. Not thread-safe: the collector holds a lock around the fold."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = {
            name: {}
            for name in (
                n.JOBS_FINISHED,
                n.ATTEMPTS_FINISHED,
                n.RUN_SECONDS,
                n.PREEMPTIONS,
                n.LOST_CORE_SECONDS,
                n.COST,
                n.TRANSITIONS,
                n.STAGING_BYTES,
                n.STAGING_TRANSFER_SECONDS,
                n.CHECKSUM_MISMATCHES,
            )
        }
        self.histograms: dict[str, dict[Labels, Histogram]] = {
            name: {} for name in n.FOLDED_HISTOGRAMS
        }
        self.jobs_by_state: dict[Labels, int] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._bases: set[Labels] = set()
        self.new_keys: list[tuple[str, str, str]] = []
        """Label sets (project, class, backend) created since the caller last cleared this."""
        self.new_bases: list[Labels] = []
        """(project, class) pairs created since the caller last cleared this."""

    # -- label sets ----------------------------------------------------------------------

    def _initialise(self, project: str, workload_class: str, backend: str) -> None:
        """Create every bounded label combination at 0, so rate() sees the first increment."""
        key = (project, workload_class, backend)
        if key in self._seen:
            return
        self._seen.add(key)
        self.new_keys.append(key)
        base = (project, workload_class)
        if base not in self._bases:
            self._bases.add(base)
            self.new_bases.append(base)
        c = self.counters
        for outcome, failure_class in n.OUTCOME_CLASSES:
            c[n.JOBS_FINISHED].setdefault((*base, outcome, failure_class), 0.0)
            for kind in n.PARTITION_KINDS:
                labels = (*base, backend, kind, outcome, failure_class)
                c[n.ATTEMPTS_FINISHED].setdefault(labels, 0.0)
        for kind in n.PARTITION_KINDS:
            c[n.PREEMPTIONS].setdefault((*base, kind), 0.0)
        c[n.RUN_SECONDS].setdefault(base, 0.0)
        for outcome in (n.OUTCOME_SUCCEEDED, n.OUTCOME_FAILED, n.OUTCOME_CANCELLED):
            c[n.COST].setdefault((*base, outcome), 0.0)
        self._histogram(n.QUEUE_WAIT, base)
        self._histogram(n.LICENCE_WAIT, base)
        self._histogram(n.CHECKPOINT_DURATION, base)
        for check in n.CHECKSUM_CHECKS:  # rate() and alerts see the first mismatch
            c[n.CHECKSUM_MISMATCHES].setdefault((*base, check), 0.0)
        for outcome in (n.OUTCOME_SUCCEEDED, n.OUTCOME_FAILED, n.OUTCOME_CANCELLED):
            self._histogram(n.MAKESPAN, (*base, outcome))
        for state in n.ACTIVE_STATES:
            self.jobs_by_state.setdefault((*base, state), 0)

    def _histogram(self, name: str, labels: Labels) -> Histogram:
        found = self.histograms[name].get(labels)
        if found is None:
            found = self.histograms[name][labels] = Histogram(n.HISTOGRAM_BUCKETS[name])
        return found

    def _add(self, name: str, labels: Labels, value: float = 1.0) -> None:
        series = self.counters[name]
        series[labels] = series.get(labels, 0.0) + value

    # -- what the fold tells -------------------------------------------------------------

    def job_accepted(self, labels: JobLabels) -> None:
        self._initialise(labels.project, labels.workload_class, labels.backend)

    def state_changed(self, labels: JobLabels, source: str | None, target: str) -> None:
        if source is not None:
            self._add(n.TRANSITIONS, (source, target))
        if source in _ACTIVE:
            key = (*labels.base, source)
            self.jobs_by_state[key] = max(self.jobs_by_state.get(key, 0) - 1, 0)
        if target in _ACTIVE:
            key = (*labels.base, target)
            self.jobs_by_state[key] = self.jobs_by_state.get(key, 0) + 1

    def job_started(self, labels: JobLabels, queue_wait_s: float) -> None:
        self._histogram(n.QUEUE_WAIT, labels.base).observe(queue_wait_s)

    def licence_waited(self, labels: JobLabels, wait_s: float) -> None:
        self._histogram(n.LICENCE_WAIT, labels.base).observe(wait_s)

    def job_recovered(self, labels: JobLabels, failure_class: str, recover_s: float) -> None:
        self._histogram(n.TIME_TO_RECOVER, (*labels.base, failure_class)).observe(recover_s)

    def attempt_finished(
        self, labels: JobLabels, attempt: FinishedAttempt, lost_core_s: float
    ) -> None:
        base, failure_class = labels.base, attempt.failure_class
        self._initialise(labels.project, labels.workload_class, attempt.backend)
        key = (*base, attempt.backend, attempt.partition_kind, attempt.outcome, failure_class)
        self._add(n.ATTEMPTS_FINISHED, key)
        self._add(n.RUN_SECONDS, base, attempt.run_s)
        if attempt.cost:
            self._add(n.COST, (*base, attempt.outcome), attempt.cost)
        if attempt.outcome == n.OUTCOME_SUCCEEDED:
            return
        self._add(n.LOST_CORE_SECONDS, (*base, failure_class), lost_core_s)
        if failure_class == _PREEMPTED:
            self._add(n.PREEMPTIONS, (*base, attempt.partition_kind))

    def checkpoint_saved(
        self, labels: JobLabels, duration_s: float | None, bytes_written: float
    ) -> None:
        if duration_s is None:
            return
        self._histogram(n.CHECKPOINT_DURATION, labels.base).observe(duration_s)
        if duration_s > 0 and bytes_written > 0:
            key = (*labels.base, n.OPERATION_CHECKPOINT_WRITE)
            self._histogram(n.STORAGE_THROUGHPUT, key).observe(bytes_written / duration_s)

    def fabric_latency(self, labels: JobLabels, rtt_s: float) -> None:
        self._histogram(n.FABRIC_LATENCY, labels.base).observe(rtt_s)

    def stage_finished(
        self,
        labels: JobLabels,
        direction: str,
        duration_s: float | None,
        endpoints: Mapping[str, tuple[float, float]],
    ) -> None:
        base = labels.base
        for endpoint, (copied, seconds) in endpoints.items():
            self._add(n.STAGING_BYTES, (*base, direction, endpoint), copied)
            self._add(n.STAGING_TRANSFER_SECONDS, (*base, direction, endpoint), seconds)
        if duration_s is None:
            return
        self._histogram(n.STAGING_DURATION, (*base, direction)).observe(duration_s)
        copied_total = sum(copied for copied, _ in endpoints.values())
        if duration_s > 0 and copied_total > 0:
            key = (*base, direction)
            self._histogram(n.STORAGE_THROUGHPUT, key).observe(copied_total / duration_s)

    def checksum_mismatch(self, labels: JobLabels, check: str) -> None:
        self._add(n.CHECKSUM_MISMATCHES, (*labels.base, check))

    def job_finished(self, labels: JobLabels, job: FinishedJob, makespan_s: float) -> None:
        self._add(n.JOBS_FINISHED, (*labels.base, job.outcome, job.failure_class))
        self._histogram(n.MAKESPAN, (*labels.base, job.outcome)).observe(makespan_s)
