"""Counters and histograms folded from the store's append-only events, one event at a time.

The fold is a pure function of the event log: replaying the same events from ``seq`` 0
gives the same values, so counters never go backwards, across scrapes or restarts.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Event, Job
from hpcbridge.telemetry import _names as n

_KNOWN_CLASSES = frozenset(c.value for c in FailureClass)
_TERMINAL = frozenset(s.value for s in JobState if s.terminal)
_ACTIVE = frozenset(n.ACTIVE_STATES)
ATTEMPT_END_KINDS = frozenset({"attempt_succeeded", "attempt_failed"})
CHECKPOINT_SAVED = "checkpoint_saved"
FABRIC_LATENCY = "fabric_latency"
RELEVANT_KINDS = frozenset(
    {"accepted", "transition", CHECKPOINT_SAVED, FABRIC_LATENCY, *ATTEMPT_END_KINDS}
)
"""Event kinds that need the job's labels; every other kind is only counted."""

Labels = tuple[str, ...]


@dataclass(slots=True)
class JobInfo:
    """What the fold keeps about a job until it finishes: its labels and a little history."""

    project: str
    workload_class: str
    backend: str
    parent: bool
    cores: int
    gpus: int
    created_at: float
    started: bool = False
    failed_at: float | None = None
    failed_class: str = ""

    @property
    def base(self) -> Labels:
        return (self.project, self.workload_class)


def _resource(spec: Mapping[str, Any], key: str, default: int) -> int:
    resources = spec.get("resources")
    value = resources.get(key, default) if isinstance(resources, Mapping) else default
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def job_info(job: Job) -> JobInfo:
    spec = job.spec
    cores = (
        _resource(spec, "nodes", 1)
        * _resource(spec, "tasks_per_node", 1)
        * _resource(spec, "cpus_per_task", 1)
    )
    return JobInfo(
        project=job.project,
        workload_class=job.workload_class,
        backend=job.backend,
        parent=job.is_array_parent,
        cores=max(cores, 1),
        gpus=_resource(spec, "gpus", 0),
        created_at=job.created_at,
    )


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


def _failure_class(value: object) -> str:
    return value if isinstance(value, str) and value in _KNOWN_CLASSES else ""


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return 0.0


class Fold:
    """The running totals. Not thread-safe: the collector holds a lock around it."""

    def __init__(self) -> None:
        self.seq = 0
        self.events = 0
        self.counters: dict[str, dict[Labels, float]] = {
            name: {}
            for name in (
                n.JOBS_FINISHED,
                n.ATTEMPTS_FINISHED,
                n.RUN_SECONDS,
                n.PREEMPTIONS,
                n.LOST_CORE_SECONDS,
                n.TRANSITIONS,
            )
        }
        self.histograms: dict[str, dict[Labels, Histogram]] = {
            name: {} for name in n.FOLDED_HISTOGRAMS
        }
        self.jobs_by_state: dict[Labels, int] = {}
        self.jobs: dict[str, JobInfo] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._bases: set[Labels] = set()
        self.new_keys: list[tuple[str, str, str]] = []
        """Label sets (project, class, backend) created since the caller last cleared this."""
        self.new_bases: list[Labels] = []
        """(project, class) pairs created since the caller last cleared this."""

    # -- label sets ----------------------------------------------------------------------

    def add_job(self, job_id: str, info: JobInfo) -> None:
        self.jobs[job_id] = info
        self._initialise(info.project, info.workload_class, info.backend)

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
        self._histogram(n.QUEUE_WAIT, base)
        self._histogram(n.CHECKPOINT_DURATION, base)
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

    # -- events --------------------------------------------------------------------------

    def apply(self, event: Event, info: JobInfo | None = None) -> None:
        """Fold one event.

        ``info`` stands in for a job the fold no longer tracks (an event that arrives after
        the job finished); events of jobs with no info at all (deleted) are only counted.
        """
        self.seq = max(self.seq, event.seq)
        self.events += 1
        info = self.jobs.get(event.job_id, info)
        if info is None or info.parent or event.kind not in RELEVANT_KINDS:
            if event.kind == "transition" and _terminal(event):
                self.jobs.pop(event.job_id, None)
            return
        if event.kind == "accepted":
            self._move(info, None, JobState.ACCEPTED.value)
        elif event.kind == "transition":
            self._transition(event, info)
        elif event.kind in ATTEMPT_END_KINDS:
            self._attempt_end(event, info)
        elif event.kind == CHECKPOINT_SAVED:
            self._checkpoint_saved(event, info)
        elif event.kind == FABRIC_LATENCY:
            rtt = _number(event.data.get("rtt_s_p50"))
            if rtt > 0:
                self._histogram(n.FABRIC_LATENCY, info.base).observe(rtt)

    def _checkpoint_saved(self, event: Event, info: JobInfo) -> None:
        raw = event.data.get("duration_s")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
            self._histogram(n.CHECKPOINT_DURATION, info.base).observe(float(raw))
        duration = _number(raw)
        written = _number(event.data.get("bytes"))
        if duration > 0 and written > 0:
            labels = (*info.base, n.OPERATION_CHECKPOINT_WRITE)
            self._histogram(n.STORAGE_THROUGHPUT, labels).observe(written / duration)

    def _move(self, info: JobInfo, source: str | None, target: str) -> None:
        if source in _ACTIVE:
            key = (*info.base, source)
            self.jobs_by_state[key] = max(self.jobs_by_state.get(key, 0) - 1, 0)
        if target in _ACTIVE:
            key = (*info.base, target)
            self.jobs_by_state[key] = self.jobs_by_state.get(key, 0) + 1

    def _transition(self, event: Event, info: JobInfo) -> None:
        source = event.from_state.value if event.from_state else None
        target = event.to_state.value if event.to_state else ""
        self._move(info, source, target)
        self._add(n.TRANSITIONS, (source or "", target))
        if target == JobState.RUNNING.value:
            if not info.started:
                info.started = True
                wait = max(event.time - info.created_at, 0.0)
                self._histogram(n.QUEUE_WAIT, info.base).observe(wait)
            if info.failed_at is not None:
                reported = event.data.get("time_to_recover_s")
                recover = _number(reported) if reported is not None else event.time - info.failed_at
                recover = max(recover, 0.0)
                self._histogram(n.TIME_TO_RECOVER, (*info.base, info.failed_class)).observe(recover)
                info.failed_at = None
        if target in _TERMINAL:
            outcome, failure_class = _outcome(target, event.data.get("failure_class"))
            self._add(n.JOBS_FINISHED, (*info.base, outcome, failure_class))
            makespan = max(event.time - info.created_at, 0.0)
            self._histogram(n.MAKESPAN, (*info.base, outcome)).observe(makespan)
            self.jobs.pop(event.job_id, None)

    def _attempt_end(self, event: Event, info: JobInfo) -> None:
        data = event.data
        succeeded = event.kind == "attempt_succeeded"
        failure_class = "" if succeeded else _failure_class(data.get("failure_class"))
        if succeeded:
            outcome = n.OUTCOME_SUCCEEDED
        elif failure_class == FailureClass.CANCELLED.value:
            outcome = n.OUTCOME_CANCELLED
        else:
            outcome = n.OUTCOME_FAILED
        backend = data.get("backend")
        backend = backend if isinstance(backend, str) and backend else info.backend
        kind = data.get("partition_kind")
        kind = kind if kind in n.PARTITION_KINDS else "regular"
        self._initialise(info.project, info.workload_class, backend)
        self._add(n.ATTEMPTS_FINISHED, (*info.base, backend, kind, outcome, failure_class))
        run_s = _number(data.get("run_s"))
        self._add(n.RUN_SECONDS, info.base, run_s)
        if succeeded:
            return
        # The reconciler's own estimate (work since the last checkpoint) when it sends one.
        reported = data.get("lost_core_hours")
        lost = _number(reported) * 3600 if reported is not None else run_s * info.cores
        self._add(n.LOST_CORE_SECONDS, (*info.base, failure_class), lost)
        if failure_class == FailureClass.PREEMPTED.value:
            self._add(n.PREEMPTIONS, (*info.base, kind))
        if outcome == n.OUTCOME_FAILED:
            info.failed_at = event.time
            info.failed_class = failure_class


def _terminal(event: Event) -> bool:
    return event.to_state is not None and event.to_state.terminal


def _outcome(state: str, failure_class: object) -> tuple[str, str]:
    if state == JobState.SUCCEEDED.value:
        return n.OUTCOME_SUCCEEDED, ""
    if state == JobState.CANCELLED.value:
        return n.OUTCOME_CANCELLED, FailureClass.CANCELLED.value
    return n.OUTCOME_FAILED, _failure_class(failure_class)
