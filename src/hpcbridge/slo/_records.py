"""Finished jobs and attempts as SLI samples.

``FinishedJob`` and ``FinishedAttempt`` are the records the one event fold
(``hpcbridge.events``) closes. Each is first turned into the metric increments the
telemetry module exports for it (same series, same labels), grouped per *unit*: the
logical job, its queue wait, or one attempt. A selector then means exactly what it means
in PromQL, and the Python evaluator and the generated Prometheus rules count the same
things.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hpcbridge.events import FinishedAttempt, FinishedJob
from hpcbridge.slo import _metrics as m
from hpcbridge.slo._gc import paused_gc
from hpcbridge.slo._model import ANY_CLASS, RatioSli, Selector, SloDefinition
from hpcbridge.states import FailureClass

__all__ = [
    "FinishedAttempt",
    "FinishedJob",
    "GpuUtilizationSample",
    "MetricEvent",
    "SliSample",
    "build_samples",
    "build_samples_by_slo",
    "metric_events",
]

_PREEMPTED = FailureClass.PREEMPTED.value


@dataclass(frozen=True, slots=True)
class GpuUtilizationSample:
    """One reading of ``hpcbridge_gpu_utilization_ratio`` (one time slice)."""

    time: float
    project: str
    workload_class: str
    ratio: float
    job_id: str = ""


@dataclass(frozen=True, slots=True)
class SliSample:
    """One good or bad event of an SLI; ``weight`` is 1 except for time-based ratios."""

    time: float
    workload_class: str
    good: bool
    weight: float = 1.0
    job_id: str = ""
    project: str = ""
    failure_class: str = ""


@dataclass(frozen=True, slots=True)
class MetricEvent:
    """An increment of a counter series, or one observation of a histogram."""

    series: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class _Unit:
    time: float
    job_id: str
    project: str
    workload_class: str
    failure_class: str
    events: list[MetricEvent] = field(default_factory=list)


def _units(job: FinishedJob) -> list[_Unit]:
    base = {"project": job.project, "workload_class": job.workload_class}
    outcome = {"outcome": job.outcome, "failure_class": job.failure_class}
    units = [
        _Unit(
            job.finished_at,
            job.job_id,
            job.project,
            job.workload_class,
            job.failure_class,
            [MetricEvent(m.JOBS_FINISHED, base | outcome, 1.0)],
        )
    ]
    if job.queue_wait_s is not None:
        at = job.finished_at if job.started_at is None else job.started_at
        unit = _Unit(at, job.job_id, job.project, job.workload_class, job.failure_class)
        unit.events.extend(_observe(m.QUEUE_WAIT, base, (job.queue_wait_s,)))
        units.append(unit)
    for ended_at, wait_s in job.licence_waits:
        unit = _Unit(ended_at, job.job_id, job.project, job.workload_class, job.failure_class)
        unit.events.extend(_observe(m.LICENCE_WAIT, base, (wait_s,)))
        units.append(unit)
    for attempt in job.attempts:
        unit = _Unit(
            attempt.finished_at, job.job_id, job.project, job.workload_class, attempt.failure_class
        )
        attempt_labels = {
            "backend": attempt.backend,
            "outcome": attempt.outcome,
            "failure_class": attempt.failure_class,
        }
        unit.events.append(MetricEvent(m.ATTEMPTS_FINISHED, base | attempt_labels, 1.0))
        unit.events.append(MetricEvent(m.RUN_SECONDS, base, attempt.run_s))
        unit.events.extend(_observe(m.CHECKPOINT_DURATION, base, attempt.checkpoint_durations_s))
        if attempt.failure_class == _PREEMPTED:
            kind = {"partition_kind": attempt.partition_kind}
            unit.events.append(MetricEvent(m.PREEMPTIONS, base | kind, 1.0))
        units.append(unit)
    return units


def _observe(metric: str, labels: dict[str, str], values: Sequence[float]) -> list[MetricEvent]:
    events = [MetricEvent(metric, labels, v) for v in values]
    events.append(MetricEvent(f"{metric}_count", labels, float(len(values))))
    events.append(MetricEvent(f"{metric}_sum", labels, float(sum(values))))
    return events


def _in_class(slo: SloDefinition, workload_class: str) -> bool:
    return slo.workload_class in (ANY_CLASS, workload_class)


def _amount(selector: Selector | None, unit: _Unit) -> float:
    if selector is None:
        return 0.0
    return sum(
        e.value for e in unit.events if e.series == selector.metric and selector.matches(e.labels)
    )


def _ratio_samples(ratio: RatioSli, unit: _Unit) -> list[SliSample]:
    total = _amount(ratio.total, unit)
    if total <= 0:
        return []
    good = total - _amount(ratio.bad, unit) if ratio.bad is not None else _amount(ratio.good, unit)
    bad = min(max(total - good, 0.0), total)
    common = {
        "workload_class": unit.workload_class,
        "job_id": unit.job_id,
        "project": unit.project,
        "failure_class": unit.failure_class,
    }
    out = []
    if bad > 0:
        out.append(SliSample(unit.time, good=False, weight=bad, **common))
    if total - bad > 0:
        out.append(SliSample(unit.time, good=True, weight=total - bad, **common))
    return out


def _samples_from_units(slo: SloDefinition, units: Iterable[_Unit]) -> list[SliSample]:
    sli = slo.sli
    out: list[SliSample] = []
    for unit in units:
        if not _in_class(slo, unit.workload_class):
            continue
        if sli.ratio is not None:
            out.extend(_ratio_samples(sli.ratio, unit))
        elif sli.threshold is not None:
            th = sli.threshold
            for e in unit.events:
                if e.series == th.metric and th.matches(e.labels):
                    out.append(
                        SliSample(
                            unit.time,
                            unit.workload_class,
                            e.value <= th.le,
                            job_id=unit.job_id,
                            project=unit.project,
                            failure_class=unit.failure_class,
                        )
                    )
    return out


def _gpu_samples(slo: SloDefinition, gpu: Iterable[GpuUtilizationSample]) -> list[SliSample]:
    band = slo.sli.band
    if band is None:
        return []
    return [
        SliSample(
            g.time, g.workload_class, band.contains(g.ratio), job_id=g.job_id, project=g.project
        )
        for g in gpu
        if _in_class(slo, g.workload_class)
        and band.matches({"project": g.project, "workload_class": g.workload_class})
    ]


def build_samples(
    slo: SloDefinition,
    jobs: Iterable[FinishedJob],
    gpu: Iterable[GpuUtilizationSample] = (),
) -> list[SliSample]:
    """The SLI samples of one SLO, sorted by time."""
    return build_samples_by_slo([slo], jobs, gpu)[slo.name]


def build_samples_by_slo(
    slos: Sequence[SloDefinition],
    jobs: Iterable[FinishedJob],
    gpu: Iterable[GpuUtilizationSample] = (),
) -> dict[str, list[SliSample]]:
    """Samples for every SLO, keyed by SLO name, each list sorted by time."""
    per_slo: list[list[SliSample]] = [[] for _ in slos]
    # One job's units at a time: a whole history's units would all be alive at once.
    with paused_gc():
        for job in jobs:
            units = _units(job)
            for slo, samples in zip(slos, per_slo, strict=True):
                samples.extend(_samples_from_units(slo, units))
    readings = list(gpu)
    result: dict[str, list[SliSample]] = {}
    for slo, samples in zip(slos, per_slo, strict=True):
        samples.extend(_gpu_samples(slo, readings))
        samples.sort(key=lambda s: s.time)
        result[slo.name] = samples
    return result


def metric_events(job: FinishedJob) -> list[tuple[float, MetricEvent]]:
    """The increments (with their times) the telemetry module exports for ``job``."""
    return [(unit.time, event) for unit in _units(job) for event in unit.events]
